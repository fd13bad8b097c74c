"""`dvc repro` on a fresh copy of the project with tiny parameters: stages run, a rerun is a no-op,
a parameter change reruns only its dependants, and a local remote round-trips the outputs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

STAGES = ["data_ingestion", "feature_extraction", "train_baseline", "train_comet", "evaluation", "reporting"]


def _run(cwd: Path, *args: str) -> str:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout + result.stderr


def test_dvc_repro_is_cached_selective_and_pushable(project_copy: Path, tmp_path_factory: pytest.TempPathFactory):
    _run(project_copy, "git", "init", "-q")
    _run(project_copy, "dvc", "init", "-q")
    _run(project_copy, "dvc", "config", "core.analytics", "false")

    first = _run(project_copy, "dvc", "repro", "reporting")
    for stage in STAGES:
        assert f"Running stage '{stage}'" in first
    assert (project_copy / "data/08_reporting/metrics.json").exists()

    again = _run(project_copy, "dvc", "repro", "reporting")
    assert "Running stage" not in again
    _run(project_copy, "git", "add", "-A")
    _run(project_copy, "git", "-c", "user.name=test", "-c", "user.email=test@example.com", "commit", "-qm", "first run")

    params = project_copy / "conf/base/parameters_evaluation.yml"
    params.write_text(params.read_text().replace("map_size: 32", "map_size: 24"))
    changed = _run(project_copy, "dvc", "repro", "reporting")
    assert [s for s in STAGES if f"Running stage '{s}'" in changed] == ["evaluation", "reporting"]
    assert "map_size" in _run(project_copy, "dvc", "params", "diff")
    assert "mean/CoMet-NF/i_auroc" in _run(project_copy, "dvc", "metrics", "show")
    _run(project_copy, "dvc", "metrics", "diff")  # works against the committed run

    remote = tmp_path_factory.mktemp("dvc-remote")
    _run(project_copy, "dvc", "remote", "add", "-d", "local", str(remote))
    _run(project_copy, "dvc", "push")
    shutil.rmtree(project_copy / "data/06_models/comet")
    _run(project_copy, "dvc", "pull", "train_comet")
    assert (project_copy / "data/06_models/comet/brick__flow.pt").exists()
