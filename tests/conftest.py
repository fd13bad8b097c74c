"""Shared fixtures: a throw-away copy of the Kedro project on tiny generated data.

``kedro_project`` runs pipelines in-process in the copy; ``project_copy`` returns
the copy's path with the tiny parameters written into ``conf/base`` (for tools
that read the conf files themselves, such as DVC or kedro-viz).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MPLBACKEND", "Agg")

PROJECT_ROOT = Path(__file__).resolve().parents[1]

#: Overrides that shrink the demo to seconds: 2 categories of 64 px images, 3 epochs.
TINY_PARAMS: dict[str, Any] = {
    "data": {
        "categories": ["brick", "widget"],
        "builtin": {"n_train": 10, "n_test_good": 3, "n_test_defect_per_type": 2, "image_size": 64, "seed": 0},
    },
    "contamination": {"ratio": 0.2},
    "features": {"resolution": 64, "rotations": [0, 180], "batch_size": 16},
    "train": {
        "workers": 1,  # in-process (tests that need worker processes set 2)
        "flow": {"model": {"n_blocks": 2, "hidden": 32, "grid": 4}, "optim": {"epochs": 3, "batch_size": 4, "val_fraction": 0.2}},
        "simplenet": {"model": {"hidden": 32}, "optim": {"epochs": 3, "batch_size": 4, "val_fraction": 0.2}},
    },
    "comet": {"warmup_epochs": 1, "window": 3},
    "evaluation": {"map_size": 32, "overlays_per_category": 2},
}


def merge(base: dict, extra: dict) -> dict:
    """Deep merge of nested dicts (``extra`` wins)."""
    out = dict(base)
    for key, value in extra.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _copy_project(target: Path) -> None:
    shutil.copy(PROJECT_ROOT / "pyproject.toml", target / "pyproject.toml")
    shutil.copytree(PROJECT_ROOT / "conf", target / "conf", ignore=shutil.ignore_patterns("local"))
    (target / "conf" / "local").mkdir()


@pytest.fixture()
def kedro_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., dict]:
    """Copy pyproject + conf into ``tmp_path`` (cwd); return ``run(pipelines, params=None, env=None)``."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    _copy_project(tmp_path)
    (tmp_path / "src").mkdir()  # the package itself is imported from the installed (editable) project
    monkeypatch.chdir(tmp_path)
    bootstrap_project(tmp_path)

    def run(pipelines: list[str], params: dict | None = None, env: str | None = None) -> dict:
        runtime = merge(TINY_PARAMS, params or {})
        with KedroSession.create(project_path=tmp_path, runtime_params=runtime, env=env) as session:
            return session.run(pipeline_names=pipelines)

    return run


@pytest.fixture()
def project_copy(tmp_path: Path) -> Path:
    """A full copy of the project (src, conf, dvc.yaml) whose conf/base holds the tiny parameters."""
    _copy_project(tmp_path)
    shutil.copytree(PROJECT_ROOT / "src", tmp_path / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("dvc.yaml", ".gitignore"):
        shutil.copy(PROJECT_ROOT / name, tmp_path / name)
    for path in (tmp_path / "conf" / "base").glob("parameters_*.yml"):
        params = yaml.safe_load(path.read_text())
        tiny = {key: merge(value, TINY_PARAMS[key]) for key, value in params.items() if key in TINY_PARAMS}
        path.write_text(yaml.safe_dump({**params, **tiny}, sort_keys=False))
    return tmp_path
