"""Raw storage of events: one DuckDB file per store, Parquet tiers beside it.

The rooms: ``schema`` (THE event record), ``eventstore`` (open, close, register, read),
``inputs`` (what ``append`` accepts), ``ingest`` (the append pipeline),
``personal_ids`` (ids that carry personal data are refused), ``chain``
(digests, seals, verify), ``tiers`` (warm/cold Parquet, exports, owned files),
``summary`` (the per-lead summary), ``queries`` (event filters, the timeline query),
``sqlcheck`` (the one inspector of user SQL), ``connection`` (DuckDB without file
access). Nothing here imports ``access``, ``sim``, ``importer`` or ``analysis``.
"""

from ..errors import (
    ReadOnlyStoreError,
    ReadOnlyViolation,
    StoreError,
    StoreLockedError,
    StoreNotFoundError,
)
from .chain import VerifyReport
from .eventstore import EventStore, open_store
from .ingest import IngestReport
from .inputs import Rejected
from .schema import ENTITY_KINDS, PUBLIC_COLUMNS, RECORD_COLUMNS, SCHEMA_VERSION, TIERS
from .tiers import MoveReport, _SimulatedCrash

__all__ = [
    "open_store",
    "EventStore",
    "IngestReport",
    "VerifyReport",
    "MoveReport",
    "StoreError",
    "StoreLockedError",
    "StoreNotFoundError",
    "ReadOnlyStoreError",
    "ReadOnlyViolation",
    "Rejected",
    "ENTITY_KINDS",
    "PUBLIC_COLUMNS",
    "RECORD_COLUMNS",
    "SCHEMA_VERSION",
    "TIERS",
    "_SimulatedCrash",
]
