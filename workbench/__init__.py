"""Lead-events workbench: simulate, store and investigate the events of lead flows.

>>> import workbench
>>> store = workbench.open_store()
"""

from .access import AccessError, Grant, Session, connect
from .access.masking import mask_document as mask

# the analyses keep their old addresses: `from workbench import analytics` still works
from .analysis import alerts as alerts
from .analysis import analytics as analytics
from .analysis import investigate as investigate
from .catalog import FieldType, event_types, field_type, register_event_type, register_field
from .display import style
from .importer import ImportInputError, ImportReport, import_events
from .sim import FlowError, IncidentError, RunReport, incident, load_flow, simulate
from .store import (
    EventStore,
    IngestReport,
    MoveReport,
    ReadOnlyStoreError,
    ReadOnlyViolation,
    Rejected,
    StoreError,
    StoreLockedError,
    StoreNotFoundError,
    VerifyReport,
    open_store,
)

__all__ = [
    "AccessError",
    "EventStore",
    "FieldType",
    "FlowError",
    "Grant",
    "IncidentError",
    "ImportInputError",
    "ImportReport",
    "IngestReport",
    "MoveReport",
    "ReadOnlyStoreError",
    "ReadOnlyViolation",
    "Rejected",
    "RunReport",
    "Session",
    "StoreError",
    "StoreLockedError",
    "StoreNotFoundError",
    "VerifyReport",
    "connect",
    "event_types",
    "field_type",
    "import_events",
    "incident",
    "load_flow",
    "mask",
    "open_store",
    "register_event_type",
    "register_field",
    "simulate",
    "style",
]
