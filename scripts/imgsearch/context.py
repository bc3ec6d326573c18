"""What every ``imgsearch`` command is handed: config, clients and the deployment's names.

Built once per run from the parsed arguments; the index description and the clients
are made on first use, so a command pays only for the AWS calls it needs. Notes about
fallbacks (no stack, names from the config) go to stderr as soon as they are known.
"""

from __future__ import annotations

import argparse
from functools import cached_property
from typing import TYPE_CHECKING

from imgsearch.blueprint import INDEX_FIELDS
from imgsearch.config import PipelineConfig
from imgsearch.s3uri import parse_s3_uri
from imgsearch.search import IndexInfo, Searcher, describe_index
from imgsearch.vectors import VectorIndex
from scripts.common.cli import Clients, clients_from_args, config_from_args
from scripts.common.console import note
from scripts.common.deployed_config import given_settings
from scripts.common.deployment import Deployment
from scripts.common.errors import CliError
from scripts.ops.failure_log import LogLookup, embedder_log_group

if TYPE_CHECKING:
    from imgsearch.s3uri import S3Uri

PROG = "imgsearch"


def say(message: str) -> None:
    """``imgsearch: <message>`` on stderr: progress and notes, never the result."""
    note(f"{PROG}: {message}")


class Context:
    """What one command needs: config, clients and resource names, built on first use."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.local_cfg: PipelineConfig = config_from_args(args)
        """cdk.json and ``-c``, before the deployed settings replace theirs (:attr:`cfg`)."""
        self.clients: Clients = clients_from_args(args, self.local_cfg)
        self.deployment = Deployment(self.local_cfg, self.clients)
        self._notes_shown = 0

    @cached_property
    def cfg(self) -> PipelineConfig:
        """The config with the deployed settings (``Deployment.settle``), read on first use.

        ``--index``/``--vector-bucket`` naming another index than the deployed one: its
        model and dimension are the operator's (``-c``), not the deployment's.
        """
        deployed = self.deployment.deployed_config
        other_index = any(
            value and value != deployed.get(key)
            for key, value in (
                ("index_name", getattr(self.args, "index", None)),
                ("vector_bucket_name", getattr(self.args, "vector_bucket", None)),
            )
        )
        cfg = self.deployment.settle(
            given_settings(self.args), exempt=INDEX_FIELDS if other_index else ()
        )
        self.show_notes()
        return cfg

    def show_notes(self) -> None:
        for line in self.deployment.notes[self._notes_shown :]:
            say(f"note: {line}")
        self._notes_shown = len(self.deployment.notes)

    @property
    def json(self) -> bool:
        return bool(self.args.output == "json")

    # ------------------------------------------------------------------ the index

    @cached_property
    def index_info(self) -> IndexInfo:
        info = describe_index(
            self.clients("s3vectors"),
            self.deployment.vector_bucket(self.args.vector_bucket),
            self.deployment.index_name(self.args.index),
        )
        self.show_notes()
        return info

    @cached_property
    def index(self) -> VectorIndex:
        info = self.index_info
        return VectorIndex(
            self.clients("s3vectors"),
            info.vector_bucket,
            info.index,
            dimension=info.dimension,
            distance_metric=info.distance_metric,
        )

    def searcher(self) -> Searcher:
        return Searcher(
            self.cfg,
            bedrock=self.clients("bedrock-runtime", max_attempts=1),
            s3vectors=self.clients("s3vectors"),
            s3=self.clients("s3"),
            index=self.index_info,
        )

    # ------------------------------------------------------------------ names

    def vector_bucket(self) -> str:
        return self.deployment.vector_bucket(self.args.vector_bucket)

    def index_name(self) -> str:
        return self.deployment.index_name(self.args.index)

    def queue_url(self) -> str:
        url = self.deployment.queue_url(self.args.queue_url)
        self.show_notes()
        return url

    def dlq_url(self) -> str:
        url = self.deployment.dlq_url(self.args.dlq_url)
        self.show_notes()
        return url

    def source_bucket(self) -> str:
        bucket = self.deployment.source_bucket(self.args.source_bucket)
        self.show_notes()
        if not bucket:
            raise CliError(
                "no source bucket: the stack's SourceBucketName output is not readable and "
                "config 'source_bucket_name' is empty; pass --source-bucket"
            )
        return bucket

    def embedder_logs(self, why: str) -> LogLookup:
        """The embedder's CloudWatch Logs (``--log-group``, else from the stack)."""
        log_group = self.args.log_group or embedder_log_group(
            self.clients("lambda"), self.deployment.embedder_function()
        )
        if log_group is None:
            say(
                "note: the embedder's function name is unknown (no stack output "
                f"EmbedderFunctionName); pass --log-group {why}"
            )
        return LogLookup(self.clients("logs"), log_group, lambda m: say(f"note: {m}"))


def object_uri(text: str) -> S3Uri:
    """An ``s3://bucket/key`` naming one object (``get``, ``delete``), else a CliError."""
    location = parse_s3_uri(text)
    if not location.key or location.key.endswith("/"):
        raise CliError(
            f"{text!r}: name one object, e.g. s3://{location.bucket}/photos/cat.jpg "
            "(or use --prefix)"
        )
    return location


__all__ = ["PROG", "Context", "object_uri", "say"]
