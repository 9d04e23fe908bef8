"""The flow's step configuration (``--flow-config FILE``): names and kinds of steps.

The events API says a step is of type ``recipient`` whether it enhances the lead or
delivers it; only the flow's configuration knows which. This small file tells the
import, and names the flow, its sources and its steps in the store so timelines and
the guide's queries read ``step_name`` naturally. YAML or JSON::

    flow:                          # optional: names the flow (vars.flow.id)
      id: 65a1b2c3d4e5f60718293a4b
      name: Solar leads
    sources:                       # optional: names sources (vars.source.id)
      - id: 65a1b2c3d4e5f60718293a01
        name: Acme Leads
    steps:                         # in flow order
      - id: 65a1b2c3d4e5f60718293b01     # the step_id the API events carry (required)
        name: TrustedForm                # shown as step_name (required)
        kind: enhancement                # source | filter | enhancement | recipient
        module_id: leadconduit-trustedform.outbound.trustedform   # optional
        entity_id: ent_trustedform       # optional: the service or buyer behind it
        entity_name: TrustedForm         # optional (default: the step name)

A step's ``module_id`` also classifies API steps that are not listed but use the same
module.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ._errors import FlowConfigError

KINDS = ("source", "filter", "enhancement", "recipient")
_STEP_KEYS = ("id", "name", "kind", "module_id", "entity_id", "entity_name")


@dataclass(frozen=True)
class StepConfig:
    """One configured step of the flow."""

    step_id: str
    name: str
    kind: str
    position: int
    module_id: str | None = None
    entity_id: str | None = None
    entity_name: str | None = None


@dataclass(frozen=True)
class FlowConfig:
    """A loaded ``--flow-config`` file (see the module docstring for the format)."""

    path: str
    flow_id: str | None = None
    flow_name: str | None = None
    sources: tuple[tuple[str, str], ...] = ()
    steps: tuple[StepConfig, ...] = ()
    by_step: dict = field(default_factory=dict, compare=False, repr=False)
    by_module: dict = field(default_factory=dict, compare=False, repr=False)

    def step(self, step_id) -> StepConfig | None:
        return self.by_step.get(step_id) if isinstance(step_id, str) else None

    def module_kind(self, module_id) -> str | None:
        return self.by_module.get(module_id) if isinstance(module_id, str) else None

    def source_name(self, source_id) -> str | None:
        return dict(self.sources).get(source_id)

    def register(self, store) -> None:
        """Name the flow, sources, steps and entities in ``store``."""
        steps = [
            {
                "step_id": s.step_id,
                "position": s.position,
                "kind": s.kind,
                "name": s.name,
                "entity_id": s.entity_id,
            }
            for s in self.steps
        ]
        if self.flow_id is not None:
            store.register_flow(self.flow_id, self.flow_name, steps=steps)
        else:
            for s in steps:
                store.register_step(flow_id=None, **s)
        for source_id, name in self.sources:
            store.register_entity(source_id, name, "source")
        for s in self.steps:
            if s.entity_id:
                store.register_entity(s.entity_id, s.entity_name or s.name, s.kind)


def load_flow_config(path) -> FlowConfig:
    """Read and check a flow configuration file (YAML or JSON).

    The format (every key but ``steps`` optional; see the module docstring)::

        flow: {id: <vars.flow.id>, name: <flow name>}
        sources: [{id: <vars.source.id>, name: <source name>}, ...]
        steps:                       # in flow order
          - id: <step_id of the API events>
            name: <step name>
            kind: source | filter | enhancement | recipient
            module_id: <module id>   # classifies other steps of that module too
            entity_id: <entity id>   # the service or buyer behind the step
            entity_name: <name>      # default: the step name

    >>> cfg = load_flow_config("tests/fixtures/flow_config.yaml")  # doctest: +SKIP
    >>> cfg.step("65a1b2c3d4e5f60718293b03").kind                 # doctest: +SKIP
    'recipient'
    """
    p = Path(path)
    if not p.is_file():
        raise FlowConfigError(f"no flow configuration file at {p}")
    text = p.read_text(encoding="utf-8")
    try:
        if p.suffix.lower() == ".json":
            doc = json.loads(text)
        else:
            import yaml

            doc = yaml.safe_load(text)
    except Exception as e:  # json's ValueError or yaml.YAMLError
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise FlowConfigError(f"{p} is not valid YAML or JSON: {first}") from None
    if not isinstance(doc, dict):
        raise FlowConfigError(
            f"{p}: the configuration must be a mapping with 'steps' (and optionally 'flow', "
            f"'sources'), not a {type(doc).__name__}"
        )
    unknown = sorted(set(doc) - {"flow", "sources", "steps"})
    if unknown:
        raise FlowConfigError(
            f"{p}: unknown top-level key(s) {unknown}; accepted: flow, sources, steps"
        )
    flow = doc.get("flow") or {}
    if not isinstance(flow, dict):
        raise FlowConfigError(f"{p}: 'flow' must be a mapping with id and name, got {flow!r}")
    flow_id = _text(flow.get("id"), p, "flow.id", required=False)
    flow_name = _text(flow.get("name"), p, "flow.name", required=False)
    sources = []
    for i, s in enumerate(doc.get("sources") or []):
        if not isinstance(s, dict):
            raise FlowConfigError(f"{p}: sources[{i}] must be a mapping with id and name")
        sources.append(
            (
                _text(s.get("id"), p, f"sources[{i}].id"),
                _text(s.get("name"), p, f"sources[{i}].name"),
            )
        )
    raw_steps = doc.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise FlowConfigError(
            f"{p}: 'steps' must be a non-empty list of steps (id, name, kind), got {raw_steps!r}"
        )
    steps, by_step, by_module = [], {}, {}
    for i, s in enumerate(raw_steps):
        where = f"steps[{i}]"
        if not isinstance(s, dict):
            raise FlowConfigError(f"{p}: {where} must be a mapping with id, name and kind")
        extra = sorted(set(s) - set(_STEP_KEYS))
        if extra:
            raise FlowConfigError(
                f"{p}: {where} has unknown key(s) {extra}; accepted: {', '.join(_STEP_KEYS)}"
            )
        kind = s.get("kind")
        if kind not in KINDS:
            raise FlowConfigError(
                f"{p}: {where}.kind is {kind!r}; accepted: {', '.join(KINDS)} "
                "(a delivery to a buyer is 'recipient')"
            )
        step = StepConfig(
            step_id=_text(s.get("id"), p, f"{where}.id"),
            name=_text(s.get("name"), p, f"{where}.name"),
            kind=kind,
            position=i + 1,
            module_id=_text(s.get("module_id"), p, f"{where}.module_id", required=False),
            entity_id=_text(s.get("entity_id"), p, f"{where}.entity_id", required=False),
            entity_name=_text(s.get("entity_name"), p, f"{where}.entity_name", required=False),
        )
        if step.step_id in by_step:
            raise FlowConfigError(f"{p}: {where}.id {step.step_id!r} is listed twice")
        by_step[step.step_id] = step
        if step.module_id:
            other = by_module.get(step.module_id)
            # a module used both to enhance and to deliver cannot classify other steps
            by_module[step.module_id] = kind if other in (None, kind) else None
        steps.append(step)
    return FlowConfig(
        path=str(p),
        flow_id=flow_id,
        flow_name=flow_name,
        sources=tuple(sources),
        steps=tuple(steps),
        by_step=by_step,
        by_module={k: v for k, v in by_module.items() if v is not None},
    )


def _text(value, path: Path, where: str, required: bool = True) -> str | None:
    if value is None:
        if required:
            raise FlowConfigError(f"{path}: {where} is missing; give it as text")
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise FlowConfigError(f"{path}: {where} must be text, got {value!r}")
    text = str(value).strip()
    if not text:
        raise FlowConfigError(f"{path}: {where} is empty; give it as text")
    return text
