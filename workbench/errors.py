"""The root of every exception the workbench raises on purpose.

Each public error class derives from :class:`WorkbenchError` and from the builtin
exception it always was (``ValueError``, ``PermissionError``, ...), so
``except WorkbenchError`` catches every error the workbench means to show a person, and
``except ValueError`` keeps working where it did. Anything else escaping a public
function is a defect: the CLI reports it as an internal error.

This module is a leaf: it imports nothing from the package.

>>> from workbench.errors import WorkbenchError
>>> issubclass(InputError, WorkbenchError) and issubclass(InputError, ValueError)
True
"""

from __future__ import annotations

__all__ = [
    "WorkbenchError",
    "InputError",
    "FieldNotFoundError",
    "UnsafePathError",
    "StoreError",
    "StoreLockedError",
    "StoreNotFoundError",
    "ReadOnlyStoreError",
    "ReadOnlyViolation",
]


class WorkbenchError(Exception):
    """An error the workbench raises on purpose, with a message meant for a person."""


class InputError(WorkbenchError, ValueError):
    """An input that cannot be read as a whole (a file, a table, an argument); the
    message names the input and what is wrong with it."""


class FieldNotFoundError(WorkbenchError, KeyError):
    """A lead never carried the field asked for (the message lists the ones it has)."""

    def __str__(self) -> str:  # KeyError would show the message in quotes
        return str(self.args[0]) if self.args else ""


class UnsafePathError(WorkbenchError, PermissionError):
    """A write aimed at a file the store owns (the store, its tiers, its audit trail),
    or at a place no file can be written."""


class StoreError(WorkbenchError, RuntimeError):
    """A store operation that cannot be done, with what to do instead."""


class StoreLockedError(StoreError):
    """Another process (or this one, differently) holds the store file."""


class StoreNotFoundError(StoreError, FileNotFoundError):
    """A store file that does not exist (or is not a workbench store)."""


class ReadOnlyStoreError(StoreError):
    """A write asked of a store opened with ``read_only=True``."""


class ReadOnlyViolation(WorkbenchError, PermissionError):
    """User SQL that would change something, or that cannot be checked."""
