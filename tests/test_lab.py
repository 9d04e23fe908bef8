"""`make lab`, the README's first command, starts JupyterLab on the curated notebooks over
the sample store, bound to 127.0.0.1 only, and a notebook opened there can read the store.

The test starts the server through the Makefile exactly as a new user would (on a free
port, with a token it chooses) and stops it, and everything it started, at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from .conftest import free_port, serving

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "workbench-lab-test"

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def _get(url: str):
    req = urllib.request.Request(url, headers={"Authorization": f"token {TOKEN}"})
    with urllib.request.urlopen(req, timeout=5) as r:
        return r.status, json.loads(r.read() or b"null")


def _non_loopback_address() -> str | None:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # no packet is sent; picks the outward interface
            addr = s.getsockname()[0]
    except OSError:
        return None
    return None if addr.startswith("127.") else addr


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("lab") / "lab.log"
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(log.parent / "runtime")}
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                "make",
                "-s",
                "lab",
                f"PORT={port}",
                f"LAB_ARGS=--no-browser --IdentityProvider.token={TOKEN} --ServerApp.port_retries=0",
            ],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    # a fresh checkout builds the sample store first: give it 180 s
    with serving(proc, lambda: _get(f"{base}/api/status"), log, "make lab", 180):
        yield base, port


def test_lab_serves_the_curated_notebooks(lab):
    base, _ = lab
    status, listing = _get(f"{base}/api/contents/")
    assert status == 200
    names = {item["name"] for item in listing["content"]}
    curated = {p.name for p in (ROOT / "notebooks").glob("*.ipynb")}
    assert curated and curated <= names
    status, nb = _get(f"{base}/api/contents/00_start_here.ipynb")
    assert nb["type"] == "notebook" and nb["content"]["cells"]


def test_lab_listens_on_loopback_only(lab):
    _, port = lab
    addr = _non_loopback_address()
    if addr is None:
        pytest.skip("this machine has no non-loopback address to try")
    with socket.socket() as s, pytest.raises(OSError):
        s.settimeout(2)
        s.connect((addr, port))


def _run_in_kernel(base: str, port: int, code: str, timeout: float = 120) -> str:
    """Start a kernel on the server, run ``code`` there, return what it printed."""
    import websocket  # jupyter_server's own dependency

    auth = {"Authorization": f"token {TOKEN}", "Content-Type": "application/json"}
    req = urllib.request.Request(f"{base}/api/kernels", data=b"{}", method="POST", headers=auth)
    with urllib.request.urlopen(req, timeout=60) as r:
        kernel_id = json.loads(r.read())["id"]
    ws = websocket.create_connection(
        f"ws://127.0.0.1:{port}/api/kernels/{kernel_id}/channels", header=auth, timeout=timeout
    )
    try:
        msg_id = uuid.uuid4().hex
        ws.send(
            json.dumps(
                {
                    "header": {
                        "msg_id": msg_id,
                        "msg_type": "execute_request",
                        "username": "test",
                        "session": uuid.uuid4().hex,
                        "version": "5.3",
                    },
                    "parent_header": {},
                    "metadata": {},
                    "channel": "shell",
                    "buffers": [],
                    "content": {
                        "code": code,
                        "silent": False,
                        "store_history": False,
                        "user_expressions": {},
                        "allow_stdin": False,
                        "stop_on_error": True,
                    },
                }
            )
        )
        out, deadline = [], time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = json.loads(ws.recv())
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                out.append(content["text"])
            elif kind == "error":
                pytest.fail("the kernel raised: " + "\n".join(content["traceback"]))
            elif kind == "status" and content["execution_state"] == "idle":
                return "".join(out)
        pytest.fail(f"the kernel did not finish in {timeout} s; printed {''.join(out)!r}")
    finally:
        ws.close()
        urllib.request.urlopen(
            urllib.request.Request(
                f"{base}/api/kernels/{kernel_id}", method="DELETE", headers=auth
            ),
            timeout=30,
        )


def test_a_notebook_kernel_there_reads_the_sample_store(lab):
    base, port = lab
    printed = _run_in_kernel(
        base,
        port,
        "import workbench\n"
        "from workbench import sample\n"
        "with workbench.connect(sample.build(), user='ana', role='analyst') as s:\n"
        "    n = s.sql('SELECT count(*) AS n FROM events').n[0]\n"
        "print(sample.store_path(), n)\n",
    )
    path, n = printed.split()
    assert Path(path) == ROOT / "var" / "sample.duckdb"
    assert int(n) > 1000
