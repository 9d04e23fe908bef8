"""The flow simulator: realistic lead flows with named incidents planted as ground truth.

``simulate(flow, leads=N, ...)`` runs leads through a flow definition (YAML, see
``sample_data/flow.yaml``) and appends their events to a store; ``incidents`` plant
known problems (``workbench incidents`` lists them). The run report keeps, in memory,
the ids of the leads each incident changed. ``stream(store, leads_per_minute=...)``
runs one live: a background thread appends events as its clock reaches them.

>>> from workbench.sim import simulate, load_flow
>>> report = simulate(load_flow(), leads=500, days=1, seed=1)
>>> report.counts["source.submitted"]
500
"""

from .flow import Flow, FlowError
from .flow_parse import load_flow, parse_flow
from .incidents import INCIDENT_TYPES, Incident, IncidentError, describe_all, incident
from .runner import FlowRunner, RunReport, simulate
from .stream import Stream, StreamError, stream

__all__ = [
    "Flow",
    "FlowError",
    "FlowRunner",
    "INCIDENT_TYPES",
    "Incident",
    "IncidentError",
    "RunReport",
    "describe_all",
    "incident",
    "load_flow",
    "parse_flow",
    "simulate",
    "stream",
    "Stream",
    "StreamError",
]
