"""``python -m localcloud`` (``make local``): the local cloud and runtime, until Ctrl-C.

Prints the endpoint and the environment variables that point the AWS CLI, boto3 and
the project's scripts at it (also written to ``.local/localcloud.env`` for ``source``),
then a status line whenever something changes.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from imgsearch.config import ConfigError, load_config
from localcloud.cloud import LocalCloud

REPO_ROOT = Path(__file__).resolve().parents[1]
ENV_FILE = REPO_ROOT / ".local" / "localcloud.env"
LOG_FILE = REPO_ROOT / ".local" / "localcloud-lambda.log"


def _overrides(pairs: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"-c {pair!r}: expected key=value, e.g. -c dimension=3072")
        out[key.strip()] = value
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m localcloud",
        description="Run the image search pipeline on this machine: S3, SQS, S3 Vectors, a "
        "stand-in Bedrock model and the Lambda functions, on 127.0.0.1.",
    )
    parser.add_argument(
        "-c",
        dest="context",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="config override, like `cdk -c` (e.g. -c dimension=3072)",
    )
    parser.add_argument("--port", type=int, default=0, help="front endpoint port (default: any)")
    parser.add_argument("--sqs-port", type=int, default=0, help="SQS port (default: any)")
    parser.add_argument("--env-file", type=Path, default=ENV_FILE, help=f"default {ENV_FILE}")
    parser.add_argument("--log-file", type=Path, default=LOG_FILE, help=f"default {LOG_FILE}")
    args = parser.parse_args(argv)

    try:
        cfg = load_config(overrides=_overrides(args.context))
    except ConfigError as exc:
        print(f"localcloud: {exc}", file=sys.stderr)
        return 2
    print("Starting the local cloud (moto + fauxqs + the Lambda functions)...", flush=True)
    stop = threading.Event()
    # SIGINT too: a shell starting us in the background (`make local &`) hands us SIGINT
    # as ignored, and then Ctrl-C / `kill -INT` would never stop the cloud.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    with LocalCloud.start(
        cfg, log_file=args.log_file, port=args.port, sqs_port=args.sqs_port
    ) as cloud:
        res = cloud.resources
        exports = "\n".join(f"export {k}={shlex.quote(v)}" for k, v in cloud.env.items())
        args.env_file.parent.mkdir(parents=True, exist_ok=True)
        args.env_file.write_text(exports + "\n")
        print(
            f"""
Local cloud ready. Embeddings come from a STAND-IN model (colour and layout features),
not Amazon Nova: image search finds look-alikes, text search understands colour words.

  endpoint        {cloud.endpoint}  (S3, S3 Vectors, Bedrock, CloudWatch, CloudFormation, SQS)
  SQS (direct)    {cloud.sqs_endpoint}
  source bucket   s3://{res.source_bucket}/   (prefixes {list(cfg.prefixes)})
  vector index    {res.vector_bucket}/{res.index_name} ({cfg.dimension} dims, {cfg.distance_metric})
  search API      {res.search_api_url or "off (search_api=false)"}  (SigV4, service execute-api)
  queue / DLQ     {res.queue_url}
                  {res.dlq_url}
  Lambda logs     {args.log_file}

In another terminal (or: source {args.env_file}):
{exports}

  aws s3 cp photo.jpg s3://{res.source_bucket}/photo.jpg
  python -m scripts.imgsearch search --text red
  python -m scripts.imgsearch search --text red --api
  python -m scripts.imgsearch status
  curl -s {cloud.endpoint}/_localcloud/status
  curl -s -X POST -H 'X-Localcloud: 1' {cloud.endpoint}/_localcloud/faults \\
       -d '{{"service": "bedrock", "error": "ThrottlingException", "count": 20}}'

Ctrl-C stops everything.
""",
            flush=True,
        )
        last = ""
        try:
            while not stop.wait(2.0):
                line = cloud.snapshot().line()
                if line != last:
                    print(line, flush=True)
                    last = line
        except KeyboardInterrupt:
            pass
        print("\nStopping the local cloud...", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
