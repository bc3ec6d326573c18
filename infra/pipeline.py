"""The whole pipeline as one construct, configured by one :class:`PipelineConfig`.

Built like an AWS CDK L2 construct: the config is its props, every part has secure
defaults (encryption, TLS-only access, blocked public access, least-privilege roles),
and the parts are attributes for whoever composes it (the stack adds outputs).
"""

from __future__ import annotations

from constructs import Construct

from imgsearch.config import PipelineConfig
from infra.functions import PipelineFunctions
from infra.observability import Observability
from infra.queues import EmbedQueue
from infra.storage import DataBuckets, VectorStore


class ImageSearchPipeline(Construct):
    """S3 source -> router Lambda -> SQS FIFO -> embedder Lambda -> Bedrock -> S3 Vectors."""

    def __init__(self, scope: Construct, id: str, *, config: PipelineConfig) -> None:
        super().__init__(scope, id)
        self.config = config
        self.buckets = DataBuckets(self, "Buckets", config=config)
        self.vectors = VectorStore(self, "Vectors", config=config)
        self.queues = EmbedQueue(self, "Queue", config=config)
        self.functions = PipelineFunctions(
            self,
            "Functions",
            config=config,
            source_bucket=self.buckets.source_bucket,
            queue=self.queues.queue,
            index_arn=self.vectors.index_arn,
        )
        self.observability = Observability(
            self,
            "Observability",
            config=config,
            queue=self.queues.queue,
            dlq=self.queues.dlq,
            router_dlq=self.functions.router_dlq,
            router=self.functions.router,
            embedder=self.functions.embedder,
        )
