import assert from "node:assert/strict";
import { test } from "node:test";
import { retryConcurrentTransactions } from "./concurrent-transactions.ts";

const concurrent = () => Object.assign(new Error("another concurrent operation"), { type: "CONCURRENT_TRANSACTIONS" });

function clock() {
  let t = 0;
  const waits: number[] = [];
  return {
    waits,
    now: () => t,
    sleep: async (ms: number) => {
      waits.push(ms);
      t += ms;
    },
  };
}

test("CONCURRENT_TRANSACTIONS is sent again with a doubling backoff until the coordinator accepts", async () => {
  const c = clock();
  let calls = 0;
  const got = await retryConcurrentTransactions(
    async () => {
      calls++;
      if (calls < 5) throw concurrent();
      return "added";
    },
    { initialMs: 10, maxMs: 40, sleep: c.sleep, now: c.now },
  );
  assert.equal(got, "added");
  assert.equal(calls, 5);
  assert.deepEqual(c.waits, [10, 20, 40, 40]);
});

test("any other error is passed on at once", async () => {
  const c = clock();
  const fenced = Object.assign(new Error("fenced"), { type: "INVALID_PRODUCER_EPOCH" });
  await assert.rejects(
    retryConcurrentTransactions(
      async () => {
        throw fenced;
      },
      { sleep: c.sleep, now: c.now },
    ),
    /fenced/,
  );
  assert.deepEqual(c.waits, []);
});

test("a coordinator that stays busy past the budget: the error is passed on", async () => {
  const c = clock();
  let calls = 0;
  await assert.rejects(
    retryConcurrentTransactions(
      async () => {
        calls++;
        throw concurrent();
      },
      { initialMs: 100, maxMs: 100, budgetMs: 1000, sleep: c.sleep, now: c.now },
    ),
    /concurrent operation/,
  );
  assert.equal(calls, 11);
  assert.ok(c.now() <= 1000);
});
