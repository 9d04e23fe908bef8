"""The errors an import raises before it stores anything."""

from __future__ import annotations

from ..errors import WorkbenchError


class ImportInputError(WorkbenchError, ValueError):
    """The input as a whole cannot be imported: no such path, no export files in a
    folder, a shape that is neither dotted events nor the events API, a bad option.

    Problems with single events never raise: they are reported and quarantined.
    """


class FlowConfigError(ImportInputError):
    """A ``--flow-config`` file that cannot be used; the message names the file, the
    entry and what would be accepted."""
