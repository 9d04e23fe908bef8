"""The stages of a chunk of leads through the flow, one module each, in flow order:
``leads`` (who they are, their data problems), ``source`` (submitted, accepted or
rejected), ``enhancements`` and ``filters`` (the flow's steps), ``buyers`` (the
waterfall), ``feedback`` (completion, conversions and returns). ``calls`` holds what
enhancements and buyers share: attempts, retries, circuit breakers. Each stage is a
function over a :class:`workbench.sim.chunk.Chunk`, the state they all share.
"""

from __future__ import annotations

from ..chunk import Chunk
from ..flow import Enhancement
from . import buyers, enhancements, feedback, filters, leads, source

__all__ = ["run"]


def run(chunk: Chunk) -> None:
    """Every stage of the flow over ``chunk``, in order."""
    leads.run(chunk)
    source.run(chunk)
    j = 0
    for step in chunk.plan.flow.steps:
        if isinstance(step, Enhancement):
            enhancements.run(chunk, step, j)
            j += 1
        else:
            filters.run(chunk, step)
    buyers.run(chunk)
    feedback.run_completion(chunk)
    feedback.run(chunk)
