"""Lambda execution environments: warm child processes that run one function's handler.

:class:`FunctionPool` keeps warm execution environments of one function, each a child
process (:mod:`localcloud.lambdas.worker`) that imported the handler once, with the
Lambda's environment (``PipelineConfig.to_lambda_env()`` plus endpoints, credentials,
region). An invocation past the function's timeout kills its environment, as Lambda does.
Everything a function writes goes to a :data:`~localcloud.telemetry.logs.LogSink`.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import sys
import threading
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

from infra.paths import FUNCTIONS_DIR
from localcloud.lambdas.worker import CONTROL
from localcloud.telemetry.logs import LogSink


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    handler: str
    """``module.function``, as in the Lambda's handler setting."""
    timeout_seconds: float
    memory_mb: int
    env: dict[str, str]


@dataclass
class InvocationResult:
    ok: bool
    payload: Any = None
    error: dict[str, Any] | None = None
    duration_ms: float = 0.0
    timed_out: bool = False


class WorkerDied(RuntimeError):
    pass


class ExecutionEnvironment:
    """One execution environment (child process) of a function."""

    def __init__(self, spec: FunctionSpec, sink: LogSink) -> None:
        self.spec = spec
        self._sink = sink
        self._ready = threading.Event()
        self._result: queue.Queue[dict[str, Any]] = queue.Queue()
        self.init_error: dict[str, Any] | None = None
        env = {
            **spec.env,
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(FUNCTIONS_DIR), spec.env.get("PYTHONPATH", "")) if p
            ),
            "PYTHONUNBUFFERED": "1",
        }
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "localcloud.lambdas.worker",
                spec.handler,
                spec.name,
                str(spec.timeout_seconds),
                str(spec.memory_mb),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=FUNCTIONS_DIR.parent,
            text=True,
            bufsize=1,
        )
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            if not line:
                continue
            if line.startswith(CONTROL):
                try:
                    message = json.loads(line[1:])
                except ValueError:
                    self._sink(self.spec.name, line[1:])
                    continue
                kind = message.get("lc")
                if kind == "ready":
                    self._ready.set()
                elif kind == "init_error":
                    self.init_error = message.get("error")
                    self._ready.set()
                elif kind == "result":
                    self._result.put(message)
                continue
            self._sink(self.spec.name, line)
        self._ready.set()
        self._result.put({"lc": "died"})

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._sink(self.spec.name, line.rstrip("\n"))

    def wait_ready(self, timeout: float) -> None:
        if not self._ready.wait(timeout):
            raise WorkerDied(f"{self.spec.name}: execution environment not ready in {timeout}s")
        if self.init_error is not None:
            err = self.init_error
            raise WorkerDied(
                f"{self.spec.name}: init failed: {err.get('errorType')}: {err.get('errorMessage')}"
            )
        if self.proc.poll() is not None:
            raise WorkerDied(f"{self.spec.name}: execution environment exited during init")

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None and self.init_error is None

    def invoke(self, event: Any, request_id: str) -> InvocationResult:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps({"id": request_id, "event": event}) + "\n")
            self.proc.stdin.flush()
        except OSError as exc:
            raise WorkerDied(f"{self.spec.name}: cannot reach execution environment") from exc
        try:
            message = self._result.get(timeout=self.spec.timeout_seconds + 1.0)
        except queue.Empty:
            self.kill()
            return InvocationResult(
                ok=False,
                error={
                    "errorType": "Sandbox.Timedout",
                    "errorMessage": f"Task timed out after {self.spec.timeout_seconds:.2f} seconds",
                },
                duration_ms=self.spec.timeout_seconds * 1000,
                timed_out=True,
            )
        if message.get("lc") == "died":
            return InvocationResult(
                ok=False,
                error={
                    "errorType": "Runtime.ExitError",
                    "errorMessage": "the execution environment exited during the invocation",
                },
            )
        return InvocationResult(
            ok=bool(message.get("ok")),
            payload=message.get("payload"),
            error=message.get("error"),
            duration_ms=float(message.get("duration_ms", 0.0)),
        )

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.close()
                self.proc.wait(timeout=3)
            except (OSError, subprocess.TimeoutExpired):
                self.kill()


class FunctionPool:
    """Warm execution environments of one function; at most ``concurrency`` at a time."""

    def __init__(self, spec: FunctionSpec, concurrency: int, sink: LogSink) -> None:
        self.spec = spec
        self.concurrency = concurrency
        self._sink = sink
        self._idle: list[ExecutionEnvironment] = []
        self._all: list[ExecutionEnvironment] = []
        self._lock = threading.Condition()
        self._closed = False
        self.stats: Counter[str] = Counter()
        self.busy_seconds = 0.0
        """Total handler time of all invocations (what Lambda bills as duration)."""

    def warm(self, count: int | None = None, timeout: float = 60.0) -> None:
        """Start ``count`` environments now (default: all) and wait for their init."""
        n = self.concurrency if count is None else min(count, self.concurrency)
        fresh = []
        with self._lock:
            while len(self._all) < n:
                worker = ExecutionEnvironment(self.spec, self._sink)
                self._all.append(worker)
                fresh.append(worker)
        for worker in fresh:
            worker.wait_ready(timeout)
        with self._lock:
            self.stats["cold_starts"] += len(fresh)
            self._idle.extend(fresh)
            self._lock.notify_all()

    def _acquire(self) -> ExecutionEnvironment:
        with self._lock:
            while True:
                if self._closed:
                    raise WorkerDied(f"{self.spec.name}: the runtime is shutting down")
                if self._idle:
                    return self._idle.pop()
                if len(self._all) < self.concurrency:
                    worker = ExecutionEnvironment(self.spec, self._sink)
                    self._all.append(worker)
                    break
                self._lock.wait()
        try:
            worker.wait_ready(60.0)
        except WorkerDied:
            self._discard(worker)
            raise
        with self._lock:
            self.stats["cold_starts"] += 1
        return worker

    def _release(self, worker: ExecutionEnvironment) -> None:
        with self._lock:
            if worker.alive and not self._closed:
                self._idle.append(worker)
            else:
                if worker in self._all:
                    self._all.remove(worker)
                worker.close()
            self._lock.notify()

    def _discard(self, worker: ExecutionEnvironment) -> None:
        with self._lock:
            if worker in self._all:
                self._all.remove(worker)
            self._lock.notify()
        worker.kill()

    @property
    def busy(self) -> int:
        with self._lock:
            return len(self._all) - len(self._idle)

    def invoke(self, event: Any) -> InvocationResult:
        """Run one invocation on a free environment (blocks while all are busy)."""
        worker = self._acquire()
        request_id = str(uuid.uuid4())
        try:
            result = worker.invoke(event, request_id)
        except WorkerDied as exc:
            result = InvocationResult(
                ok=False, error={"errorType": "Runtime.ExitError", "errorMessage": str(exc)}
            )
        finally:
            self._release(worker)
        with self._lock:  # invocations run on several threads: count under the lock
            self.stats["invocations"] += 1
            self.busy_seconds += result.duration_ms / 1000.0
            if not result.ok:
                self.stats["errors"] += 1
            if result.timed_out:
                self.stats["timeouts"] += 1
        return result

    def close(self) -> None:
        with self._lock:
            self._closed = True
            workers = list(self._all)
            self._all.clear()
            self._idle.clear()
            self._lock.notify_all()
        for worker in workers:
            worker.close()


__all__ = [
    "ExecutionEnvironment",
    "FunctionPool",
    "FunctionSpec",
    "InvocationResult",
    "WorkerDied",
]
