"""Where the sample store lives, and how it is built.

``make lab`` and the curated notebooks open the sample store; it is built from the
committed export under ``sample_data/`` the first time it is needed, so a fresh clone
needs no generated files.

>>> from workbench import sample
>>> sample.store_path().name
'sample.duckdb'
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .paths import ENV_SAMPLE_STORE as ENV_STORE
from .paths import project_root, sample_data_dir
from .paths import sample_store_path as store_path
from .store import EventStore, StoreError, open_store

__all__ = ["project_root", "store_path", "export_path", "build", "open_sample", "ENV_STORE"]


def export_path() -> Path:
    """The committed export the sample store is built from."""
    root = sample_data_dir()
    for name in ("sample_events.parquet", "guide_examples.jsonl"):
        if (root / name).exists():
            return root / name
    raise FileNotFoundError(f"no sample export in {root}")


def build(path: str | os.PathLike | None = None, *, force: bool = False) -> Path:
    """Build the sample store from the committed export (if missing, or with ``force``)."""
    path = Path(path) if path is not None else store_path()
    if path.exists() and not force and _current(path):
        return path
    force = force or path.exists()  # a store of an older schema is built again
    if force:
        for p in (path, path.with_name(path.name + ".wal")):
            p.unlink(missing_ok=True)
    tmp = path.with_name(path.name + ".building")
    for p in (tmp, tmp.with_name(tmp.name + ".wal")):
        p.unlink(missing_ok=True)
    with open_store(tmp) as store:
        _load(store)
    tmp.replace(path)
    return path


def _current(path: Path) -> bool:
    """Whether the store at ``path`` has this workbench's schema (else it is rebuilt)."""
    try:
        with open_store(path, read_only=True):
            return True
    except StoreError as e:
        if "schema" in str(e) or "not a workbench store" in str(e):
            return False
        raise


def _load(store: EventStore) -> None:
    """Fill an empty store with the sample data (dimensions, incidents, events)."""
    loader = _sample_loader()
    if loader is not None:
        loader(store)
        return
    report = store.append(export_path(), progress=False, label="sample")
    if report.quarantined:
        raise RuntimeError(f"the sample export has invalid events:\n{report}")


def _sample_loader():
    # the simulator, when present, knows the sample run's flow and incidents
    try:
        from .sim import sample_run
    except ImportError:
        return None
    return getattr(sample_run, "load_into", None)


def open_sample(read_only: bool = True) -> EventStore:
    """Open the sample store (building it first if needed).

    >>> store = open_sample()                                      # doctest: +SKIP
    """
    path = build()
    return open_store(path, read_only=read_only)


if __name__ == "__main__":  # pragma: no cover - `python -m workbench.sample [PATH]`
    target = build(sys.argv[1] if len(sys.argv) > 1 else None, force="--force" in sys.argv)
    print(f"sample store ready: {target}")
