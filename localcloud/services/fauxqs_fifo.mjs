// Makes fauxqs' FIFO receives behave as SQS's do (fauxqs 1.9 differs in two ways):
//
// 1. One ReceiveMessage returns several messages of one message group, in order. SQS "tries
//    to return as many messages with the same message group ID as possible" per call (up to
//    MaxNumberOfMessages, 10), may add other groups' messages when fewer are available, and
//    keeps each group's FIFO order ("FIFO queue delivery logic in Amazon SQS", SQS Developer
//    Guide). fauxqs takes one message per group and then locks the group, so a Lambda FIFO
//    batch could never hold two messages of one group. The group stays locked until every
//    message received from it is deleted or visible again, as in SQS (and fauxqs' lock
//    counts already work that way).
// 2. Messages of one group that become visible again together (their visibility timeout ran
//    out, or ChangeMessageVisibility to 0) go back to the front of the group in their order.
//    fauxqs puts each one at the front in turn, which reverses a batch.
//
// Wrappers rather than a copy of fauxqs' code: the original dequeue still does the receive
// counts, the redrive to the DLQ and the visibility deadlines.

/** The group of an in-flight message, by receipt handle. */
function groupOf(queue, handle) {
  const entry = queue.inflightMessages.get(handle);
  return entry ? (entry.message.messageGroupId ?? "__default") : undefined;
}

/** Sort a group's waiting messages by sequence number (stable; fauxqs pads them to 20 digits). */
function restoreOrder(queue, groups) {
  for (const groupId of groups) {
    const msgs = queue.fifoMessages.get(groupId);
    if (!msgs || msgs.length < 2) continue;
    const seq = (m) => m.sequenceNumber ?? "";
    let sorted = true;
    for (let i = 1; i < msgs.length && sorted; i++) sorted = seq(msgs[i - 1]) <= seq(msgs[i]);
    if (!sorted) msgs.sort((a, b) => (seq(a) < seq(b) ? -1 : seq(a) > seq(b) ? 1 : 0));
  }
}

export function strictFifo(SqsQueue) {
  const dequeueFifo = SqsQueue.prototype.dequeueFifo;
  SqsQueue.prototype.dequeueFifo = function (maxCount, visibilityTimeoutOverride, dlqResolver) {
    const visibility = visibilityTimeoutOverride ?? parseInt(this.attributes.VisibilityTimeout);
    if (!(visibility > 0)) {
      // Received messages visible again at once: a second pass would take them again.
      return dequeueFifo.call(this, maxCount, visibilityTimeoutOverride, dlqResolver);
    }
    const count = Math.min(maxCount, 10);
    const result = [];
    const mine = new Map(); // group -> locks taken by this receive
    while (result.length < count) {
      // Groups locked only by this receive may give their next message; others stay locked.
      for (const groupId of mine.keys()) this.fifoLockedGroups.delete(groupId);
      const got = dequeueFifo.call(this, count - result.length, visibilityTimeoutOverride, dlqResolver);
      for (const m of got) {
        const groupId = groupOf(this, m.ReceiptHandle);
        mine.set(groupId, (mine.get(groupId) ?? 0) + 1);
        this.fifoLockedGroups.delete(groupId);
      }
      for (const [groupId, locks] of mine) this.fifoLockedGroups.set(groupId, locks);
      if (got.length === 0) break;
      result.push(...got);
    }
    // Each group's messages together, groups in the order they were first taken.
    const firstSeen = [...new Set(result.map((m) => groupOf(this, m.ReceiptHandle)))];
    return firstSeen.flatMap((g) => result.filter((m) => groupOf(this, m.ReceiptHandle) === g));
  };

  const processTimers = SqsQueue.prototype.processTimers;
  SqsQueue.prototype.processTimers = function () {
    if (!this.isFifo() || this.inflightMessages.size === 0) return processTimers.call(this);
    const before = [...this.inflightMessages.keys()].map((h) => [h, groupOf(this, h)]);
    processTimers.call(this);
    restoreOrder(this, new Set(before.filter(([h]) => !this.inflightMessages.has(h)).map(([, g]) => g)));
  };

  const changeVisibility = SqsQueue.prototype.changeVisibility;
  SqsQueue.prototype.changeVisibility = function (receiptHandle, timeoutSeconds) {
    const groupId = this.isFifo() ? groupOf(this, receiptHandle) : undefined;
    changeVisibility.call(this, receiptHandle, timeoutSeconds);
    if (groupId !== undefined && timeoutSeconds === 0) restoreOrder(this, [groupId]);
  };
}
