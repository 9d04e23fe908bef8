"""Mapping dotted events (the reference guide's shape) to workbench events: directly.

A dotted event already is our record (``evt_`` id, ``recipient.delivered``, ISO-8601
time, metadata, snapshot), so it passes as it is, with two repairs the platform's
exports need: a catalogue key the export does not carry is added as null (and listed
under ``metadata.import.filled_null``), and the outcome ``skip`` reads ``skipped``.
Fields outside the record are kept by the store under ``metadata._extra``. Events of a
type the catalogue does not know are handed on as they are and quarantined.
"""

from __future__ import annotations

import contextlib
import json

from ..store.schema import INPUT_FIELDS as RECORD_FIELDS
from ..store.schema import STORE_FIELDS
from ._api import not_an_object
from ._read import Item
from ._report import Problem, Stats


class DottedMapper:
    """Maps dotted events one by one."""

    def __init__(self, catalog, stats: Stats):
        self.catalog = catalog
        self.stats = stats

    def map(self, item: Item) -> list:
        value = item.value
        stats = self.stats
        if not isinstance(value, dict):
            return [not_an_object(item, stats)]
        event = dict(value)
        t = event.get("type")
        eid = event.get("event_id") if isinstance(event.get("event_id"), str) else None
        lead_id = event.get("lead_id") if isinstance(event.get("lead_id"), str) else None
        if isinstance(event.get("outcome"), str) and event["outcome"].strip().lower() == "skip":
            event["outcome"] = "skipped"
        md = event.get("metadata")
        if isinstance(md, str):
            with contextlib.suppress(ValueError):
                md = json.loads(md)
        if md is None:
            md = {}
        if not isinstance(t, str) or t not in self.catalog:
            why = "no event type" if not t else f"unknown event type {t!r}"
            stats.unclassified.append(Problem(item.file, item.place, why, eid, lead_id))
            return [value]
        if not isinstance(md, dict):
            stats.unclassified.append(
                Problem(item.file, item.place, "metadata is not an object", eid, lead_id)
            )
            return [value]
        missing = [k for k in self.catalog.get(t).required_metadata if k not in md]
        if missing:
            md = {**md, **dict.fromkeys(missing)}
            md["import"] = {"format": "dotted", "filled_null": missing}
            for k in missing:
                stats.null_required[f"{t}.{k}"] += 1
        event["metadata"] = md
        for k in event:
            if k not in _RECORD:
                stats.metadata_only[f"_extra.{k}"] += 1
        stats.mapped_objects += 1
        stats.mapped[(t, t)] += 1
        return [event]


_RECORD = frozenset(RECORD_FIELDS) | STORE_FIELDS
