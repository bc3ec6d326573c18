"""Running the ``imgsearch`` CLI against a local cloud, in-process or as a real process.

In-process runs call :func:`scripts.imgsearch.cli.main` with the cloud's ``AWS_*`` variables
exported (exactly how a user points the CLI at ``make local``); an exception escaping
``main`` fails the test, so "never a traceback" is checked on every call. Subprocess
runs go through ``python -m scripts.imgsearch.cli`` for what only a real process shows
(the entry point, stderr, no credentials at all).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from imgsearch.config import load_config
from localcloud.cloud import LocalCloud
from localcloud.samples import encode, photo
from scripts.imgsearch.cli import main
from tests.e2e.conftest import E2E_CONFIG, upload

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class CliRun:
    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]

    def one_line_error(self, *fragments: str) -> str:
        """Assert: non-zero exit, exactly one stderr line, no traceback, naming ``fragments``."""
        assert self.code != 0, f"expected a failure, got exit 0: {self.out!r}"
        assert len(self.err_lines) == 1, f"expected one stderr line, got: {self.err!r}"
        assert "Traceback" not in self.err
        line = self.err_lines[0]
        assert line.startswith("imgsearch: error: "), line
        for fragment in fragments:
            assert fragment in line, f"{fragment!r} not in {line!r}"
        return line


def run_cli(cloud: LocalCloud, capsys: pytest.CaptureFixture[str], *argv: str) -> CliRun:
    capsys.readouterr()
    with cloud.environ():
        code = main(list(argv))
    captured = capsys.readouterr()
    return CliRun(code, captured.out, captured.err)


def run_process(
    env: Mapping[str, str], *argv: str, stdin: str | None = None, timeout: float = 120
) -> CliRun:
    proc = subprocess.run(
        [sys.executable, "-m", "scripts.imgsearch.cli", *argv],
        cwd=REPO,
        env={**clean_env(), **env},
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return CliRun(proc.returncode, proc.stdout, proc.stderr)


def clean_env() -> dict[str, str]:
    """The parent's environment without any AWS setting (and no instance metadata)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
    )
    return env


# --------------------------------------------------------------------------- data

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 20, 20),
    "blue": (20, 40, 220),
    "green": (20, 180, 40),
}
PHOTOS = ("coffee", "rocket", "astronaut")


def colour_jpeg(rgb: tuple[int, int, int], size: tuple[int, int] = (96, 64)) -> bytes:
    from PIL import Image

    return encode(Image.new("RGB", size, rgb))


def photo_jpeg(name: str, side: int = 160) -> bytes:
    return encode(photo(name, side))


def seed(cloud: LocalCloud) -> dict[str, bytes]:
    """A small library: photos (and a half-size copy) under photos/, colours under colours/."""
    from PIL import Image

    library: dict[str, bytes] = {}
    for name in PHOTOS:
        img = photo(name, 160)
        library[f"photos/{name}.jpg"] = encode(img)
        half = img.resize((img.width // 2, img.height // 2))
        library[f"photos/{name}-small.jpg"] = encode(half)
    for name, rgb in COLOURS.items():
        library[f"colours/{name}.jpg"] = colour_jpeg(rgb)
    library["colours/red-wide.png"] = encode(Image.new("RGB", (300, 40), COLOURS["red"]), "PNG")
    for key, data in library.items():
        upload(cloud, key, data)
    cloud.wait_idle(90)
    return library


@pytest.fixture(scope="module")
def seeded_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    """One local cloud with :func:`seed`'s library, shared by a module's read-only tests."""
    cfg = load_config(overrides=E2E_CONFIG)
    cloud = LocalCloud.start(cfg, log_file=tmp_path_factory.mktemp("logs") / "lambda.log")
    try:
        cloud.library = seed(cloud)  # type: ignore[attr-defined]
        yield cloud
    finally:
        cloud.close()


def library(cloud: LocalCloud) -> dict[str, Any]:
    data: dict[str, Any] = cloud.library  # type: ignore[attr-defined]
    return data
