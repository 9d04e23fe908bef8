"""The sample run: how ``sample_data/sample_events.parquet`` was made, and how the
sample store is filled from it.

``sample_data/sample_run.yaml`` records the run (flow, seed, leads, days, end time,
incidents). ``make lab`` builds the sample store with :func:`load_into`, which
registers the flow's dimensions, records the run's incidents (the ground truth) and
appends the committed export, so a fresh clone needs no simulation. :func:`write`
regenerates the export from the recorded parameters; the same parameters give the
same events, event ids included.

>>> run = sample_run()
>>> run.leads, run.seed
(20000, 20261127)
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..paths import sample_data_dir
from .flow import Flow, FlowError
from .flow_parse import load_flow
from .incidents import IncidentSpec, as_spec
from .runner import FlowRunner, simulate

__all__ = ["SampleRun", "sample_run", "load_into", "write", "run_file", "export_file"]


def run_file() -> Path:
    """``sample_data/sample_run.yaml``: the sample run's recorded parameters."""
    return sample_data_dir() / "sample_run.yaml"


def export_file() -> Path:
    """``sample_data/sample_events.parquet``: the committed export of the sample run."""
    return sample_data_dir() / "sample_events.parquet"


@dataclass(frozen=True)
class SampleRun:
    """The recorded parameters of the sample run."""

    flow_path: Path
    seed: int
    leads: int
    days: float
    end: dt.datetime
    incidents: tuple[IncidentSpec, ...]

    @property
    def flow(self) -> Flow:
        return load_flow(self.flow_path)

    def runner(self) -> FlowRunner:
        """A runner that reproduces the sample run exactly."""
        return FlowRunner(
            self.flow,
            leads=self.leads,
            days=self.days,
            end=self.end,
            seed=self.seed,
            incidents=self.incidents,
        )


def sample_run(path: str | os.PathLike | None = None) -> SampleRun:
    """Read the sample run's parameters (default: ``sample_data/sample_run.yaml``)."""
    p = Path(path) if path is not None else run_file()
    data = yaml.safe_load(p.read_text())
    allowed = {"flow", "seed", "leads", "days", "end", "incidents"}
    if (
        not isinstance(data, dict)
        or set(data) - allowed
        or not {"seed", "leads", "end"} <= set(data)
    ):
        raise FlowError(
            f"{p}: expected keys {', '.join(sorted(allowed))} (seed, leads, end required)"
        )
    end = data["end"]
    if isinstance(end, str):
        end = dt.datetime.fromisoformat(end.replace("Z", "+00:00"))
    return SampleRun(
        flow_path=p.parent / data.get("flow", "flow.yaml"),
        seed=int(data["seed"]),
        leads=int(data["leads"]),
        days=float(data.get("days", 7)),
        end=end,
        incidents=tuple(as_spec(i) for i in data.get("incidents") or ()),
    )


def load_into(store) -> None:
    """Fill an empty store with the sample: dimensions, incidents, then the events.

    >>> import workbench
    >>> store = workbench.open_store()
    >>> load_into(store)                                           # doctest: +SKIP
    """
    runner = sample_run().runner()
    runner.register(store)
    report = store.append(export_file(), progress=False, label="sample")
    if report.quarantined:
        raise RuntimeError(f"the sample export has invalid events:\n{report}")


def write(path: str | os.PathLike | None = None, *, progress: bool = False) -> Path:
    """Simulate the sample run again and export it (default: the committed export)."""
    from ..store import open_store

    out = Path(path) if path is not None else export_file()
    run = sample_run()
    with open_store() as store:
        simulate(
            run.flow,
            leads=run.leads,
            days=run.days,
            end=run.end,
            seed=run.seed,
            incidents=run.incidents,
            store=store,
            progress=progress,
        )
        store.export(out)
    return out


if __name__ == "__main__":  # pragma: no cover - `python -m workbench.sim.sample_run --write`
    if "--write" not in sys.argv:
        print("usage: python -m workbench.sim.sample_run --write [PATH]")
        sys.exit(2)
    args = [a for a in sys.argv[1:] if a != "--write"]
    target = write(args[0] if args else None, progress=True)
    print(f"wrote {target} ({target.stat().st_size / 1e6:.1f} MB)")
