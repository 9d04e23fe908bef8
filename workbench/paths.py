"""Where the checkout's sample data lives: a leaf that imports nothing from the package.

The sample store (``make lab``, the curated notebooks) is built from files committed
under ``sample_data/``; the simulator reads its default flow there. Both ask this
module, so neither imports the other.

>>> sample_data_dir().name
'sample_data'
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "ENV_SAMPLE_STORE",
    "project_root",
    "sample_data_dir",
    "default_flow_path",
    "sample_store_path",
]

#: Environment variable naming the sample store's path (``make lab`` sets it).
ENV_SAMPLE_STORE = "WORKBENCH_SAMPLE_STORE"


def project_root() -> Path:
    """The checkout that holds ``sample_data/`` (found from the package or the cwd)."""
    for start in (Path(__file__).resolve().parent, Path.cwd().resolve()):
        for d in (start, *start.parents):
            if (d / "sample_data").is_dir() and (d / "pyproject.toml").exists():
                return d
    raise FileNotFoundError(
        "cannot find the workbench checkout (a folder with sample_data/ and pyproject.toml); "
        f"set {ENV_SAMPLE_STORE} to the sample store's path"
    )


def sample_data_dir() -> Path:
    """``sample_data/`` of the checkout: the flow, the sample run and its export."""
    return project_root() / "sample_data"


def default_flow_path() -> Path:
    """``sample_data/flow.yaml``: the annotated example flow."""
    return sample_data_dir() / "flow.yaml"


def sample_store_path() -> Path:
    """The sample store's path: ``$WORKBENCH_SAMPLE_STORE``, else ``var/sample.duckdb``."""
    env = os.environ.get(ENV_SAMPLE_STORE)
    if env:
        return Path(env)
    return project_root() / "var" / "sample.duckdb"
