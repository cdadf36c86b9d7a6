import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { KeyValueStore } from "../../../stream/state/store.ts";
import { json } from "../../../stream/types.ts";
import { SCOPE_SEPARATOR, ScopedStore } from "./rule-state.ts";

function stage(): KeyValueStore<unknown> {
  return new KeyValueStore<unknown>({ name: "rules-uid", serde: json<unknown>() });
}

const keysOf = (s: ScopedStore<unknown>) => [...s.entries()].map(([k]) => k);

describe("ScopedStore", () => {
  it("keeps its rule's keys under its prefix in the stage's store, in update order", () => {
    const backing = stage();
    const a = new ScopedStore<unknown>(backing, "state.a", undefined, undefined);
    const b = new ScopedStore<unknown>(backing, "state.b", undefined, undefined);
    a.put("1", 10, 1);
    a.put("2", 20, 2);
    b.put("1", 99, 1);
    a.put("1", 11, 3); // moves to the end
    assert.deepEqual(keysOf(a), ["2", "1"]);
    assert.equal(a.get("1"), 11);
    assert.equal(b.get("1"), 99);
    assert.equal(a.get("3"), undefined);
    // The stage's store gets the changes at the checkpoint.
    assert.equal(backing.size, 0);
    a.flush();
    b.flush();
    assert.equal(backing.get(`state.a${SCOPE_SEPARATOR}1`), 11);
    a.delete("2");
    assert.deepEqual(keysOf(a), ["1"]);
    assert.equal(backing.get(`state.a${SCOPE_SEPARATOR}2`), 20);
    a.flush();
    assert.equal(backing.get(`state.a${SCOPE_SEPARATOR}2`), undefined);
    a.drop();
    assert.equal(a.size, 0);
    assert.deepEqual(
      [...backing.entries()].map(([k]) => k),
      [`state.b${SCOPE_SEPARATOR}1`],
    );
  });

  it("expires keys not updated within the TTL, the least recently updated first", () => {
    const backing = stage();
    const s = new ScopedStore<unknown>(backing, "state.t", 100, undefined);
    s.put("a", 1, 0);
    s.put("b", 1, 50);
    s.put("a", 2, 120); // a updated: b is now the oldest
    s.flush();
    s.expire(160); // drops what was last updated at or before 60
    assert.deepEqual(keysOf(s), ["a"]);
    assert.equal(s.expirations, 1);
    s.flush();
    assert.equal(backing.has(`state.t${SCOPE_SEPARATOR}b`), false);
    s.expire(220);
    assert.equal(s.size, 0);
  });

  it("evicts the least recently updated key past its bound", () => {
    const s = new ScopedStore<unknown>(stage(), "state.m", undefined, 2);
    s.put("a", 1, 1);
    s.put("b", 1, 2);
    s.put("a", 1, 3);
    s.put("c", 1, 4);
    assert.deepEqual(keysOf(s), ["a", "c"]);
    assert.equal(s.evictions, 1);
  });

  it("adopts restored keys (a key adopted twice keeps one entry)", () => {
    const backing = stage();
    backing.put(`state.r${SCOPE_SEPARATOR}x`, 7);
    const s = new ScopedStore<unknown>(backing, "state.r", 100, undefined);
    s.adopt("x", 5);
    s.adopt("x", 50);
    assert.equal(s.size, 1);
    assert.equal(s.get("x"), 7);
    s.expire(120); // counted from 50, the later adoption
    assert.equal(s.size, 1);
    s.expire(150);
    assert.equal(s.size, 0);
  });

  it("writes each change once at a flush, whatever happened to the key in between", () => {
    const backing = stage();
    const s = new ScopedStore<unknown>(backing, "state.f", undefined, undefined);
    const full = (k: string) => `state.f${SCOPE_SEPARATOR}${k}`;
    s.put("kept", 1, 1);
    s.put("gone", 1, 1);
    s.flush();
    backing.takeChanges();
    s.put("kept", 2, 2);
    s.put("kept", 3, 3);
    s.delete("gone");
    s.put("gone", 4, 4); // deleted, then written again: ends written
    s.put("new", 5, 5);
    s.delete("new"); // written, then deleted before any flush: ends absent
    s.flush();
    assert.deepEqual(
      backing
        .takeChanges()
        .map((c) => [c.key, c.value?.toString() ?? null])
        .sort(),
      [
        [full("gone"), "4"],
        [full("kept"), "3"],
      ],
    );
    s.delete("kept");
    s.drop(); // a deletion not yet flushed is dropped too
    assert.equal(backing.size, 0);
  });

  it("reads what a restore put in the stage's store once it forgot and adopted again", () => {
    const backing = stage();
    const s = new ScopedStore<unknown>(backing, "state.r", undefined, undefined);
    s.put("x", 1, 1);
    s.put("y", 2, 2);
    s.flush();
    // A restore replaces the store's contents behind the view.
    backing.restore(`state.r${SCOPE_SEPARATOR}x`, Buffer.from("5"));
    backing.restore(`state.r${SCOPE_SEPARATOR}y`, null);
    s.forget();
    for (const [k] of backing.entries()) s.adopt(k.slice(`state.r${SCOPE_SEPARATOR}`.length), 10);
    assert.deepEqual([...s.entries()], [["x", 5]]);
    assert.equal(s.get("y"), undefined);
  });
});
