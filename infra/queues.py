"""The FIFO work queue between the router (and the backfill) and the embedder."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from imgsearch.config import PipelineConfig


class EmbedQueue(Construct):
    """FIFO queue plus FIFO dead-letter queue; SQS-managed encryption, TLS only.

    High-throughput FIFO (deduplication and throughput limit per message group): the
    backfill of millions of objects would otherwise be capped at 300 sends/s per
    queue. Scoping deduplication to the message group loses nothing because one
    object always maps to one group (``imgsearch.messages.group_id``).

    Queues are destroyed with the stack: they hold work in flight, not data, and the
    backfill can re-enqueue everything from the inventory.
    """

    def __init__(self, scope: Construct, id: str, *, config: PipelineConfig) -> None:
        super().__init__(scope, id)
        cfg = config
        common: dict[str, Any] = {
            "fifo": True,
            "encryption": sqs.QueueEncryption.SQS_MANAGED,
            "enforce_ssl": True,
            "deduplication_scope": sqs.DeduplicationScope.MESSAGE_GROUP,
            "fifo_throughput_limit": sqs.FifoThroughputLimit.PER_MESSAGE_GROUP_ID,
            "removal_policy": cdk.RemovalPolicy.DESTROY,
        }
        self.dlq = sqs.Queue(
            self,
            "DeadLetters",
            queue_name=cfg.dlq_name,
            retention_period=cdk.Duration.days(cfg.dlq_retention_days),
            **common,
        )
        self.queue = sqs.Queue(
            self,
            "Queue",
            queue_name=cfg.queue_name,
            visibility_timeout=cdk.Duration.seconds(cfg.visibility_timeout_seconds),
            retention_period=cdk.Duration.days(cfg.queue_retention_days),
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dlq, max_receive_count=cfg.max_receive_count
            ),
            **common,
        )
