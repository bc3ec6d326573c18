"""The backfill's own failures, so its library modules need nothing from the CLI layer.

Every message names the file, object or option at fault and what to do about it. They
derive from :class:`scripts.common.errors.ToolError` (not ``CliError``: they are not
command-line mistakes), which the backfill's ``cli`` turns, through
``scripts.common.cli.run_main``, into one stderr line and ``exit_code`` (2 unless given).
The run loop catches :class:`BackfillError` to stop reading but still save a gap-free
checkpoint.
"""

from __future__ import annotations

from scripts.common.errors import ToolError


class BackfillError(ToolError):
    """An expected failure of the backfill: ``str(self)`` is the line the operator sees."""


class InventoryError(BackfillError):
    """The inventory cannot be used as given; the message names the file and the fix."""


class CheckpointError(BackfillError):
    """The checkpoint cannot be read, written, or does not belong to this run."""


class SendError(BackfillError):
    """SQS refused the whole batch for a reason retrying will not fix, or kept failing."""


class FilterError(BackfillError):
    """A ``--min-size``/``--max-size``/``--modified-after`` value cannot be read.

    Deliberately not a ``ValueError``: argparse would swallow that into its own
    "invalid value" message instead of ours.
    """


__all__ = ["BackfillError", "CheckpointError", "FilterError", "InventoryError", "SendError"]
