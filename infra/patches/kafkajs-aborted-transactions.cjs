// Replacement for kafkajs/src/consumer/filterAbortedMessages.js (kafkajs 2.2.4).
//
// kafkajs activates at most one aborted transaction per message it looks at, so when a fetch
// starts inside several aborted transactions (two producers of one partition, which is what a
// task takeover leaves behind), records of the second one reach a read_committed consumer.
// Kafka's Java client activates every aborted transaction whose first offset has been reached
// (a priority queue by first offset); this does the same. Installed by infra/patches/apply.mjs.
const Long = require("../utils/long");
const ABORTED_MESSAGE_KEY = Buffer.from([0, 0, 0, 0]);

const isAbortMarker = ({ key }) => {
  if (!key) return false;
  return Buffer.from(key).equals(ABORTED_MESSAGE_KEY);
};

module.exports = ({ messages, abortedTransactions }) => {
  if (!abortedTransactions?.length) {
    return messages;
  }
  const pending = [...abortedTransactions].sort((a, b) =>
    Long.fromValue(a.firstOffset).compare(Long.fromValue(b.firstOffset)),
  );
  const aborted = new Set();
  return messages.filter((message) => {
    while (pending.length && Long.fromValue(message.offset).gte(Long.fromValue(pending[0].firstOffset))) {
      aborted.add(pending.shift().producerId);
    }
    const { producerId, inTransaction } = message.batchContext;
    if (isAbortMarker(message)) {
      aborted.delete(producerId);
      return true;
    }
    return !(inTransaction && aborted.has(producerId));
  });
};
