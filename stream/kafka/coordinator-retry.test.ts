import assert from "node:assert/strict";
import { test } from "node:test";
import { retryCoordinator } from "./coordinator-retry.ts";
import { KafkaUnreachableError } from "./stream-client.ts";

const refusal = (type: string) => Object.assign(new Error(type), { type });
const concurrent = () => refusal("CONCURRENT_TRANSACTIONS");

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
  const got = await retryCoordinator(
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

test("a coordinator that moved or is loading, under kafkajs' names and Kafka's, and wrapped by kafkajs' retrier: sent again", async () => {
  const types = [
    "NOT_COORDINATOR_FOR_GROUP",
    "NOT_COORDINATOR",
    "GROUP_COORDINATOR_NOT_AVAILABLE",
    "COORDINATOR_NOT_AVAILABLE",
    "GROUP_LOAD_IN_PROGRESS",
    "COORDINATOR_LOAD_IN_PROGRESS",
  ];
  for (const type of types) {
    const c = clock();
    let calls = 0;
    // kafkajs' retrier gives up with an error of its own whose cause is the broker's answer.
    const wrapped = Object.assign(new Error("retries exceeded"), {
      name: "KafkaJSNumberOfRetriesExceeded",
      cause: refusal(type),
    });
    const got = await retryCoordinator(
      async () => {
        calls++;
        if (calls === 1) throw refusal(type);
        if (calls === 2) throw wrapped;
        return "committed";
      },
      { sleep: c.sleep, now: c.now },
    );
    assert.equal(got, "committed", type);
    assert.equal(calls, 3, type);
  }
});

test("any other error is passed on at once; an unreachable Kafka only when asked to wait it out", async () => {
  const c = clock();
  const fenced = refusal("INVALID_PRODUCER_EPOCH");
  await assert.rejects(
    retryCoordinator(
      async () => {
        throw fenced;
      },
      { sleep: c.sleep, now: c.now },
    ),
    /INVALID_PRODUCER_EPOCH/,
  );
  const down = new KafkaUnreachableError(["127.0.0.1:1"], "connect ECONNREFUSED");
  await assert.rejects(
    retryCoordinator(
      async () => {
        throw down;
      },
      { sleep: c.sleep, now: c.now },
    ),
    /ECONNREFUSED/,
  );
  assert.deepEqual(c.waits, []);
  let calls = 0;
  const got = await retryCoordinator(
    async () => {
      if (++calls < 3) throw down;
      return "connected";
    },
    { unreachable: true, sleep: c.sleep, now: c.now },
  );
  assert.equal(got, "connected");
  assert.equal(c.waits.length, 2);
});

test("a coordinator that stays busy past the budget: the error is passed on, each refusal told", async () => {
  const c = clock();
  let calls = 0;
  const told: number[] = [];
  await assert.rejects(
    retryCoordinator(
      async () => {
        calls++;
        throw concurrent();
      },
      {
        initialMs: 100,
        maxMs: 100,
        budgetMs: 1000,
        sleep: c.sleep,
        now: c.now,
        onRetry: (_e, attempt) => told.push(attempt),
      },
    ),
    /CONCURRENT_TRANSACTIONS/,
  );
  assert.equal(calls, 11);
  assert.equal(told.length, 10);
  assert.ok(c.now() <= 1000);
});
