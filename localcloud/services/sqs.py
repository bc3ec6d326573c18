"""The local cloud's SQS: fauxqs (Node, MIT) as a child process on 127.0.0.1.

moto's SQS recomputes queue attributes over every message on each send and receive, so
it slows quadratically and cannot hold a 10,000-message burst. fauxqs keeps FIFO
semantics (message groups with one in-flight batch per group, deduplication, visibility
timeouts, receive counts, redrive to a FIFO DLQ after ``maxReceiveCount``) at thousands
of messages a second. Differences from SQS that matter here: one ``ReceiveMessage``
returns at most one message per group (the launcher corrects that, ``fauxqs_fifo.mjs``),
and ``StartMessageMoveTask`` is missing.

The child is tied to its parent: it exits when the parent closes its stdin (also when
the parent dies), and :meth:`SqsServer.close` terminates it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
LAUNCHER = Path(__file__).with_name("fauxqs_launcher.mjs")


class SqsStartError(RuntimeError):
    """fauxqs could not be started; the message says what to install or check."""


@dataclass
class SqsServer:
    """A running fauxqs. ``endpoint`` is what ``AWS_ENDPOINT_URL_SQS`` should be."""

    endpoint: str
    process: subprocess.Popen[bytes]

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                if self.process.stdin:
                    self.process.stdin.close()
                self.process.wait(timeout=3)
            except (subprocess.TimeoutExpired, OSError):
                self.process.kill()
                self.process.wait(timeout=3)

    def __enter__(self) -> SqsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def inspect_queue(self, name: str) -> dict[str, Any]:
        """fauxqs' non-destructive view of a queue: ready / in-flight / delayed messages."""
        with urllib.request.urlopen(f"{self.endpoint}/_fauxqs/queues/{name}", timeout=10) as r:
            data: dict[str, Any] = json.loads(r.read())
        return data


def _node() -> str:
    """The project's pinned Node (``node_modules/.bin/node``), else the one on PATH."""
    pinned = REPO_ROOT / "node_modules" / ".bin" / "node"
    if pinned.is_file() and os.access(pinned, os.X_OK):
        return str(pinned)
    node = shutil.which("node")
    if node is None:
        raise SqsStartError(
            "node is not on PATH and node_modules has none: run `make install` "
            "(the local SQS, fauxqs, needs Node)"
        )
    return node


def start_sqs(port: int = 0, *, timeout: float = 20.0) -> SqsServer:
    """Start fauxqs on 127.0.0.1 (``port`` 0 = a free port) and wait until it listens."""
    if not (REPO_ROOT / "node_modules" / "fauxqs").is_dir():
        raise SqsStartError(
            f"fauxqs is not installed in {REPO_ROOT / 'node_modules'}; run `make install` "
            "(npm ci) first"
        )
    proc = subprocess.Popen(
        [_node(), str(LAUNCHER), str(port)],
        cwd=REPO_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "FAUXQS_LOGGER": "false"},
    )
    assert proc.stdout is not None
    line: list[bytes] = []
    reader = threading.Thread(target=lambda: line.append(proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(timeout)
    if not line or not line[0]:
        proc.kill()
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        raise SqsStartError(f"fauxqs did not start within {timeout:.0f}s: {err.strip()[-2000:]}")
    actual = json.loads(line[0])["port"]
    # Drain stderr in the background so a chatty child never blocks on a full pipe.
    threading.Thread(target=_drain, args=(proc,), daemon=True).start()
    return SqsServer(endpoint=f"http://127.0.0.1:{actual}", process=proc)


def _drain(proc: subprocess.Popen[bytes]) -> None:
    for stream in (proc.stderr,):
        if stream is not None:
            for _ in iter(stream.readline, b""):
                pass


__all__ = ["SqsServer", "SqsStartError", "start_sqs"]
