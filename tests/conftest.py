"""Shared fixtures: small stores in temporary folders and an event factory."""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import os
import signal
import socket
import subprocess
import time
import urllib.error
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa
import pytest

import workbench
from workbench import catalog

_counter = itertools.count(1)


def make_event(
    type: str = "source.submitted", *, lead_id: str = "lead_T1", at=None, **fields
) -> dict:
    """A valid event of ``type`` (fields override), timestamped ``at`` (default: now)."""
    at = at or dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    if isinstance(at, dt.datetime):
        at = at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    event = {
        "event_id": f"evt_test{next(_counter):016d}",
        "type": type,
        "timestamp": at,
        "lead_id": lead_id,
        "flow_id": "flow_test",
        "entity_id": "ent_test",
        "step_id": "step_test",
        "duration_ms": 25,
        "metadata": catalog.example_metadata(type) if type in catalog.DEFAULT_CATALOG else {},
        "lead_snapshot": {"first_name": "John", "email": "john@example.com", "phone": "5125550123"},
    }
    event.update(fields)
    return event


def lead_events(lead_id: str, start: dt.datetime, *, delivered: bool = True) -> list[dict]:
    """The guide's timeline for one lead: submitted ... delivered/failed, flow.completed."""
    steps = [
        ("source.submitted", 33),
        ("source.accepted", 47),
        ("enhancement.success", 31),
        ("filter.passed", 33),
        ("recipient.delivered" if delivered else "recipient.failed", 75),
        ("flow.completed", 266),
    ]
    out, t = [], start
    for type_, ms in steps:
        out.append(make_event(type_, lead_id=lead_id, at=t, duration_ms=ms))
        t += dt.timedelta(milliseconds=ms)
    return out


@pytest.fixture
def store():
    s = workbench.open_store()
    yield s
    s.close()


@pytest.fixture
def store_path(tmp_path):
    return tmp_path / "events.duckdb"


@pytest.fixture
def disk_store(store_path):
    s = workbench.open_store(store_path)
    yield s
    s.close()


# --------------------------------------------------------------------------- the sample week


@dataclass
class Week:
    """A simulated week in a store in memory, with its run report and incidents."""

    store: workbench.EventStore
    report: object
    table: pa.Table
    incidents: pd.DataFrame


def _simulate_week(runner) -> Week:
    from workbench.sim.runner import SCHEMA

    store = workbench.open_store()
    runner.register(store)
    tables = list(runner.tables())
    reader = pa.RecordBatchReader.from_batches(SCHEMA, (b for t in tables for b in t.to_batches()))
    ingest = store.append(reader, progress=False)
    assert ingest.quarantined == 0, ingest
    incidents = store.sql(
        "SELECT incident_id, name, entity, starts_at, ends_at FROM incidents"
    ).set_index("name")
    return Week(store, runner.report(), pa.concat_tables(tables), incidents)


@pytest.fixture(scope="session")
def sample_week():
    """The sample run's week (20,000 leads and its incidents), simulated once per test
    session; tests only read it."""
    from workbench.sim.sample_run import sample_run

    week = _simulate_week(sample_run().runner())
    yield week
    week.store.close()


@pytest.fixture(scope="session")
def clean_week():
    """The same week with no incident planted, simulated once per test session."""
    from workbench.sim import FlowRunner
    from workbench.sim.sample_run import sample_run

    run = sample_run()
    runner = FlowRunner(run.flow, leads=run.leads, days=run.days, end=run.end, seed=run.seed)
    week = _simulate_week(runner)
    yield week
    week.store.close()


# --------------------------------------------------------------------------- a browser


@pytest.fixture(scope="session")
def browser() -> str:
    """The Chromium for static export and the browser tests. Without one the test is
    skipped, saying why, unless WORKBENCH_REQUIRE_BROWSER is set (CI), where it fails."""
    from workbench.charts.export import browser_problem, find_browser

    problem = browser_problem()
    if problem:
        if os.environ.get("WORKBENCH_REQUIRE_BROWSER"):
            pytest.fail(f"WORKBENCH_REQUIRE_BROWSER is set: {problem}")
        pytest.skip(problem)
    return find_browser()


# --------------------------------------------------------------------------- widget traffic


@pytest.fixture
def widget_messages(monkeypatch) -> list[dict]:
    """Every message widgets send towards a browser during the test (state updates,
    figure traces), recorded as the kernel would send them."""
    from ipywidgets.widgets.widget import Widget

    sent: list[dict] = []
    send = Widget._send

    def record(self, msg, buffers=None):
        sent.append(msg)
        return send(self, msg, buffers)

    monkeypatch.setattr(Widget, "_send", record)
    return sent


# --------------------------------------------------------------------------- a server


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(proc: subprocess.Popen, probe, log, what: str, seconds: float):
    """Wait until ``probe()`` answers (the server ``proc`` started, in its own session),
    failing with the end of ``log`` if it exits or stays silent for ``seconds``; on the
    way out, stop its whole process group."""
    try:
        deadline = time.monotonic() + seconds
        while True:
            if proc.poll() is not None:
                pytest.fail(f"{what} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                probe()
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"JupyterLab did not answer in {seconds:g} s:\n{log.read_text()[-3000:]}"
                    )
                time.sleep(0.5)
        yield
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# --------------------------------------------------------------------------- JupyterLab

LAB_TOKEN = "workbench-browser-test"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextlib.contextmanager
def jupyterlab(root, store, base_dir):
    """JupyterLab on 127.0.0.1 serving the notebooks in ``root`` over the store at
    ``store`` (as the sample store), with no news check and every cell rendered;
    yields (url, log) and stops the server on the way out."""
    import json as _json
    import sys as _sys
    import urllib.request as _request

    settings = base_dir / "settings"
    for plugin, values in {
        "@jupyterlab/apputils-extension/notification": {"fetchNews": "false"},
        "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    }.items():
        f = settings / f"{plugin}.jupyterlab-settings"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(_json.dumps(values))
    port = free_port()
    env = {
        **os.environ,
        "WORKBENCH_SAMPLE_STORE": str(store),
        "JUPYTERLAB_SETTINGS_DIR": str(settings),
        "JUPYTER_RUNTIME_DIR": str(base_dir / "runtime"),
    }
    log = base_dir / "lab.log"
    args = [
        _sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1",
        f"--port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={LAB_TOKEN}", f"--ServerApp.root_dir={root}",
        "--LabApp.expose_app_in_browser=True",
    ]  # fmt: skip
    if os.geteuid() == 0:
        args.append("--allow-root")
    with log.open("w") as out:
        proc = subprocess.Popen(
            args, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"

    def probe():
        _request.urlopen(f"{url}/api/status?token={LAB_TOKEN}", timeout=5)

    with serving(proc, probe, log, "JupyterLab", 90):
        yield url, log


# JupyterLab shows an error as stderr; a traceback tells it from a warning
_FAILED_CELLS = (
    "() => [...document.querySelectorAll('.jp-CodeCell')].filter(c => [...c.querySelectorAll("
    "'.jp-OutputArea-output[data-mime-type=\"application/vnd.jupyter.stderr\"]')]"
    ".some(o => o.textContent.includes('Traceback')))"
)


def open_and_run(page, url: str, name: str, *, all_but_last: bool = False, timeout=240_000):
    """Open notebook ``name`` in JupyterLab, wait for its kernel, run every cell (or all
    but the last) and wait until each has run."""
    # ?reset: a fresh workspace, so no notebook an earlier test opened stays in a tab
    page.goto(f"{url}/lab/tree/{name}?reset&token={LAB_TOKEN}")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    page.wait_for_function(
        "() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
        " && window.jupyterapp.shell.currentWidget.sessionContext"
        " && window.jupyterapp.shell.currentWidget.sessionContext.session"
        " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel"
        " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel"
        ".connectionStatus === 'connected'",
        timeout=60_000,
    )
    command = "notebook:run-all-above" if all_but_last else "notebook:run-all-cells"
    page.evaluate(
        "(command) => { const nb = window.jupyterapp.shell.currentWidget.content;"
        " nb.activeCellIndex = nb.widgets.length - 1;"
        " return window.jupyterapp.commands.execute(command); }",
        command,
    )
    # every cell run, or one failed (Run All stops there: say which, not wait it out)
    page.wait_for_function(
        "(skip) => { if ((" + _FAILED_CELLS + ")().length) return true;"
        " let p = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]"
        ".map(e => e.textContent.trim()); if (skip) p = p.slice(0, -1);"
        " return p.length > 0 && p.every(t => /^\\[\\d+\\]:$/.test(t)); }",
        arg=all_but_last,
        timeout=timeout,
    )
    failed = page.evaluate(
        "() => (" + _FAILED_CELLS + ")().map(c => [c.querySelector('.jp-InputArea-editor')"
        "?.textContent || '', c.querySelector('.jp-OutputArea').textContent])"
    )
    if failed:
        source, error = failed[0]
        raise AssertionError(
            f"{name}: a cell failed\n--- cell\n{source[:600]}\n--- error\n{error[-1500:]}"
        )
