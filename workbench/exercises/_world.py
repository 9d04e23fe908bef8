"""A small simulated world for a trainee: the sample flow over two days, seeded, with
one planted incident, in a store of its own. The events a trainee reads go through a
Session; the ground truth (the incident, the leads it changed, the generated events
as they left the simulator) stays here, out of every relation a Session can read.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field

import pyarrow as pa

from ..sim import FlowRunner
from ..sim.incidents import Incident, incident
from ..sim.runner import SCHEMA
from ..sim.sample_run import sample_run
from ..store import EventStore, open_store

#: Every world ends here (the sample week's end), so a seed gives the same events
END = dt.datetime(2026, 11, 27, 12, tzinfo=dt.UTC)


@dataclass
class World:
    """A trainee's store and what the simulator knows of it."""

    seed: int
    store: EventStore
    events: pa.Table  # as generated, before the store saw them
    incidents: tuple[Incident, ...]
    incident_leads: dict = field(repr=False)
    rng: random.Random = field(repr=False)

    @property
    def start(self) -> dt.datetime:
        return self.incidents[0].starts_at if self.incidents else END

    def entity_names(self, kind: str) -> list[str]:
        """The flow's entities of ``kind`` (source, enhancement, filter, recipient)."""
        df = self.store.sql("SELECT name FROM entities WHERE kind = ? ORDER BY name", [kind])
        return df["name"].tolist()

    def step_ids(self) -> dict[str, str]:
        """step name -> step id, from the flow's dimensions."""
        df = self.store.sql("SELECT name, step_id FROM steps")
        return dict(zip(df["name"], df["step_id"], strict=True))

    def observed(self, inc: Incident) -> tuple[dt.datetime, dt.datetime]:
        """When ``inc`` showed in the events: the first and last event of a lead it
        changed at the entity it hit, within its window (a problem planted at 3 a.m.
        shows with the first lead that comes); its window when nothing showed."""
        import pyarrow.compute as pc

        changed = pa.array(sorted(self.incident_leads.get(inc.incident_id, ())), pa.string())
        ev = self.events
        keep = pc.and_(
            pc.is_in(ev["lead_id"], value_set=changed),
            pc.and_(
                pc.greater_equal(ev["timestamp"], inc.starts_at),
                pc.less(ev["timestamp"], inc.ends_at),
            ),
        )
        if inc.entity_id:
            keep = pc.and_(keep, pc.equal(ev["entity_id"], inc.entity_id))
        times = ev.filter(keep)["timestamp"]
        if len(times) == 0:
            return inc.starts_at, inc.ends_at
        return pc.min(times).as_py(), pc.max(times).as_py()

    def close(self) -> None:
        self.store.close()


def build(
    seed: int,
    specs=(),
    *,
    leads: int = 1500,
    days: float = 2,
    path=None,
    record_incidents: bool = False,
) -> World:
    """Simulate ``leads`` leads over ``days`` days ending :data:`END` with the incidents
    ``specs`` into a new store (in memory, or at ``path``). The incidents are recorded
    in the store's ``incidents`` table only when ``record_incidents``: in a trainee's
    store they are the answer."""
    run = sample_run()
    runner = FlowRunner(run.flow, leads=leads, days=days, end=END, seed=seed, incidents=specs)
    store = open_store(path) if path is not None else open_store()
    try:
        if record_incidents:
            runner.register(store)
        else:
            runner.flow.register(store)
        tables = list(runner.tables())
        reader = pa.RecordBatchReader.from_batches(
            SCHEMA, (b for t in tables for b in t.to_batches())
        )
        store.append(reader, progress=False)
    except BaseException:
        store.close()
        raise
    report = runner.report()
    return World(
        seed=seed,
        store=store,
        events=pa.concat_tables(tables) if tables else SCHEMA.empty_table(),
        incidents=tuple(runner.incidents),
        incident_leads={k: tuple(v) for k, v in report.incident_leads.items()},
        rng=random.Random(seed),
    )


def spec(kind: str, **params):
    """An incident spec (``sim.incidents.incident``), for readability at call sites."""
    return incident(kind, **params)
