import assert from "node:assert/strict";
import { test } from "node:test";
import { TokenLimiter } from "./token-limiter.ts";

function clock() {
  let ms = 0;
  return { now: () => ms, advance: (by: number) => (ms += by) };
}

test("rate: a burst, then `rate` per second; the refusal says when to ask again; each token has its own budget", () => {
  const c = clock();
  const limiter = new TokenLimiter({ rate: 2, burst: 3, concurrency: 100, tails: 1 }, c.now);
  for (let i = 0; i < 3; i++) {
    const a = limiter.admit("a");
    assert.ok(a.ok);
    a.release();
  }
  const refused = limiter.admit("a");
  assert.deepEqual(refused.ok ? undefined : [refused.limit, refused.retryAfterSeconds], ["rate", 1]);
  assert.match(refused.ok ? "" : refused.message, /more than 2 requests per second \(burst 3\) \(rate\)/);
  assert.ok(limiter.admit("b").ok, "another token");
  c.advance(500); // one request's worth at 2 per second
  assert.ok(limiter.admit("a").ok);
  assert.equal(limiter.admit("a").ok, false);
  c.advance(10_000); // never more than the burst saved up
  for (let i = 0; i < 3; i++) assert.ok(limiter.admit("a").ok);
  assert.equal(limiter.admit("a").ok, false);
});

test("a slow rate asks for a longer wait", () => {
  const limiter = new TokenLimiter({ rate: 0.25, burst: 1, concurrency: 4, tails: 1 }, clock().now);
  assert.ok(limiter.admit("a").ok);
  const r = limiter.admit("a");
  assert.equal(r.ok ? 0 : r.retryAfterSeconds, 4);
});

test("concurrency: requests in flight per token, given back once (a second release changes nothing)", () => {
  const limiter = new TokenLimiter({ rate: 1000, burst: 1000, concurrency: 2, tails: 1 }, clock().now);
  const first = limiter.admit("a");
  const second = limiter.admit("a");
  assert.ok(first.ok && second.ok);
  const third = limiter.admit("a");
  assert.deepEqual(third.ok ? undefined : [third.limit, third.retryAfterSeconds], ["concurrency", 1]);
  assert.ok(limiter.admit("b").ok);
  first.release();
  first.release();
  assert.ok(limiter.admit("a").ok);
  assert.equal(limiter.admit("a").ok, false);
});

test("tails: open ones per token", () => {
  const limiter = new TokenLimiter({ rate: 1, burst: 1, concurrency: 1, tails: 2 }, clock().now);
  const a = limiter.openTail("a");
  assert.ok(a.ok && limiter.openTail("a").ok);
  const refused = limiter.openTail("a");
  assert.equal(refused.ok ? undefined : refused.limit, "tails");
  a.release();
  assert.ok(limiter.openTail("a").ok);
});
