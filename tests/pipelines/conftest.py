"""A throw-away copy of the Kedro project on tiny generated data, for end-to-end pipeline runs."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

PROJECT_ROOT = Path(__file__).resolve().parents[2]

#: Overrides that shrink the demo to seconds: 2 categories of 64 px images, 2 epochs.
TINY_PARAMS: dict[str, Any] = {
    "data": {
        "categories": ["brick", "widget"],
        "builtin": {"n_train": 10, "n_test_good": 3, "n_test_defect_per_type": 2, "image_size": 64, "seed": 0},
    },
    "contamination": {"ratio": 0.2},
    "features": {"resolution": 64, "rotations": [0, 180], "batch_size": 16},
    "train": {
        "flow": {"model": {"n_blocks": 2, "hidden": 32}, "optim": {"epochs": 3, "batch_size": 4, "val_fraction": 0.2}},
        "simplenet": {"model": {"hidden": 32}, "optim": {"epochs": 3, "batch_size": 4, "val_fraction": 0.2}},
    },
    "comet": {"warmup_epochs": 1, "window": 3},
    "evaluation": {"map_size": 32, "overlays_per_category": 2},
}


def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


@pytest.fixture()
def kedro_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., dict]:
    """Copy pyproject + conf into ``tmp_path``; return ``run(pipelines, params=None)``."""
    shutil.copy(PROJECT_ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copytree(PROJECT_ROOT / "conf", tmp_path / "conf", ignore=shutil.ignore_patterns("local"))
    (tmp_path / "conf" / "local").mkdir()
    (tmp_path / "src").mkdir()  # the package itself is imported from the installed (editable) project
    monkeypatch.chdir(tmp_path)
    bootstrap_project(tmp_path)

    def run(pipelines: list[str], params: dict | None = None, env: str | None = None) -> dict:
        runtime = _merge(TINY_PARAMS, params or {})
        with KedroSession.create(project_path=tmp_path, runtime_params=runtime, env=env) as session:
            return session.run(pipeline_names=pipelines)

    return run
