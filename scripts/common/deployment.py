"""Where the deployed pipeline's resources are: stack outputs first, config names second.

A deployed stack publishes its resource names as CloudFormation outputs (keys in
:data:`imgsearch.contract.OUTPUTS`, the only map of output keys on this side); they are
authoritative (a created source bucket has a generated name that only the stack knows).
Without a stack (the local cloud, a stack deployed under another name, no
``cloudformation:DescribeStacks`` permission) the names come from the config, as the
stack would have named them, and the queue URL from ``GetQueueUrl``. An explicit
command-line value beats both. The settings the Lambdas run with come from the stack
too (:meth:`Deployment.settle`, see ``scripts.common.deployed_config``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from functools import cached_property
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from imgsearch.aws_errors import error_code
from imgsearch.blueprint import parse_deployed_config
from imgsearch.config import ConfigError, PipelineConfig
from imgsearch.contract import OUTPUTS
from scripts.common.cli import Clients
from scripts.common.deployed_config import apply_deployed
from scripts.common.errors import CREDENTIAL_ERRORS, DeploymentError, describe_aws_error

QUEUE_MISSING_CODES = frozenset(
    {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist", "NonExistentQueue"}
)


class Deployment:
    """The deployed pipeline's resource names, resolved lazily (one AWS call per lookup at most)."""

    def __init__(self, cfg: PipelineConfig, clients: Clients, *, use_stack: bool = True) -> None:
        self.cfg = cfg
        self.clients = clients
        self.use_stack = use_stack
        self.notes: list[str] = []
        """Why a fallback was taken, for the operator (printed by the scripts)."""
        self.stack_account = ""
        """The account the stack is deployed in (from its StackId), once it was read."""

    # ------------------------------------------------------------------ stack outputs

    @cached_property
    def outputs(self) -> dict[str, str]:
        """The stack's outputs, or ``{}`` when there is no readable stack."""
        if not self.use_stack:
            return {}
        try:
            response = self.clients("cloudformation").describe_stacks(StackName=self.cfg.stack_name)
        except CREDENTIAL_ERRORS:
            raise
        except ClientError as exc:
            if error_code(exc) == "ValidationError":
                self.notes.append(
                    f"stack {self.cfg.stack_name!r} not found; using names from the config"
                )
            else:
                self.notes.append(
                    f"cannot read stack {self.cfg.stack_name!r} ({describe_aws_error(exc)}); "
                    "using names from the config"
                )
            return {}
        except BotoCoreError as exc:
            self.notes.append(
                f"cannot read stack {self.cfg.stack_name!r} ({exc}); using names from the config"
            )
            return {}
        stacks = response.get("Stacks") or []
        if not stacks:
            return {}
        arn = str(stacks[0].get("StackId") or "").split(":")  # arn:aws:cloudformation:r:acct:..
        self.stack_account = arn[4] if len(arn) > 5 else ""
        return {
            str(o["OutputKey"]): str(o["OutputValue"])
            for o in stacks[0].get("Outputs") or []
            if "OutputKey" in o and "OutputValue" in o
        }

    # ------------------------------------------------------------------ the deployed config

    @cached_property
    def deployed_config(self) -> dict[str, Any]:
        """The settings the stack was deployed with (its ``DeployedConfig`` output), or
        ``{}`` without a readable stack (or one deployed before the output existed)."""
        text = self.outputs.get(OUTPUTS.deployed_config)
        if not text:
            if self.outputs:
                self.notes.append(
                    f"stack {self.cfg.stack_name!r} has no {OUTPUTS.deployed_config} output "
                    "(deployed by an older version); using the local config: redeploy"
                )
            return {}
        try:
            return parse_deployed_config(text)
        except ConfigError as exc:
            raise DeploymentError(f"stack {self.cfg.stack_name!r}: {exc}; redeploy") from exc

    def settle(self, given: Mapping[str, str], *, exempt: Collection[str] = ()) -> PipelineConfig:
        """The config to run with: the local one with the deployed settings in it.

        ``given`` are the operator's deliberate settings (see
        :func:`scripts.common.deployed_config.given_settings`); one that differs from the
        deployed value is refused. Later lookups here use the settled config too.
        """
        cfg, notes = apply_deployed(self.cfg, self.deployed_config, given, exempt=exempt)
        published = "source_bucket_owner" in self.deployed_config  # older stacks: unknown
        if published and not cfg.source_bucket_owner and self.stack_account:
            # What the stack does with an empty setting: the Lambdas pin the deploying
            # account (infra.storage.source_bucket_owner), so the scripts pin it too.
            cfg = cfg.replace(source_bucket_owner=self.stack_account)
        created = self.outputs.get(OUTPUTS.source_bucket_name)
        if created and not cfg.source_bucket_name:
            # the bucket the stack created: the core's rules (which bucket is "the source",
            # e.g. to pin its owner on a query image) then hold for it as in the Lambdas
            cfg = cfg.replace(source_bucket_name=created)
        self.notes.extend(notes)
        self.cfg = cfg
        return cfg

    # ------------------------------------------------------------------ names

    def queue_url(self, explicit: str | None = None) -> str:
        """The embedding queue's URL: ``explicit``, the stack output, else GetQueueUrl."""
        if explicit:
            return explicit
        url = self.outputs.get(OUTPUTS.queue_url)
        if url:
            return url
        return self._queue_url_by_name(self.cfg.queue_name)

    def dlq_url(self, explicit: str | None = None) -> str:
        if explicit:
            return explicit
        url = self.outputs.get(OUTPUTS.dlq_url)
        if url:
            return url
        return self._queue_url_by_name(self.cfg.dlq_name)

    def router_dlq_url(self, explicit: str | None = None) -> str:
        """The router's dead-letter queue (S3 events it failed to enqueue)."""
        if explicit:
            return explicit
        url = self.outputs.get(OUTPUTS.router_dlq_url)
        if url:
            return url
        return self._queue_url_by_name(self.cfg.router_dlq_name)

    def source_bucket(self, explicit: str | None = None) -> str | None:
        """The bucket the pipeline indexes, or None when nothing names it."""
        return (
            explicit
            or self.outputs.get(OUTPUTS.source_bucket_name)
            or self.cfg.source_bucket_name
            or None
        )

    def inventory_bucket(self, explicit: str | None = None) -> str | None:
        """The bucket S3 Inventory writes to (the stack owns it; config has no name)."""
        return explicit or self.outputs.get(OUTPUTS.inventory_bucket_name) or None

    def vector_bucket(self, explicit: str | None = None) -> str:
        return (
            explicit or self.outputs.get(OUTPUTS.vector_bucket_name) or self.cfg.vector_bucket_name
        )

    def index_name(self, explicit: str | None = None) -> str:
        return explicit or self.outputs.get(OUTPUTS.index_name) or self.cfg.index_name

    def embedder_function(self, explicit: str | None = None) -> str | None:
        """The embedder Lambda's name (the stack generates it; only its output knows it)."""
        return explicit or self.outputs.get(OUTPUTS.embedder_function_name) or None

    def search_api_url(self, explicit: str | None = None) -> str:
        """The search API's base URL: ``explicit``, else the stack's SearchApiUrl output."""
        url = explicit or self.outputs.get(OUTPUTS.search_api_url)
        if not url:
            raise DeploymentError(
                f"stack {self.cfg.stack_name!r} has no {OUTPUTS.search_api_url} output (not "
                "deployed, or deployed with -c search_api=false); pass --api-url or deploy it"
            )
        return url

    # ------------------------------------------------------------------ helpers

    def _queue_url_by_name(self, name: str) -> str:
        try:
            response = self.clients("sqs").get_queue_url(QueueName=name)
        except ClientError as exc:
            if error_code(exc) in QUEUE_MISSING_CODES:
                raise DeploymentError(
                    f"queue {name!r} does not exist (and no stack {self.cfg.stack_name!r} "
                    "names one): deploy the stack, check --region, or pass --queue-url"
                ) from exc
            raise
        return str(response["QueueUrl"])
