"""`kedro viz build` works offline and its static build holds every registered pipeline."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PIPELINES = ["data_ingestion", "feature_extraction", "train_baseline", "train_comet", "evaluation", "reporting", "noise_sweep"]


@pytest.mark.slow
def test_viz_build_contains_all_pipelines(project_copy: Path):
    kedro = Path(sys.executable).parent / "kedro"
    result = subprocess.run(
        [str(kedro), "viz", "build"], cwd=project_copy, capture_output=True, text=True, timeout=300, env=os.environ
    )
    assert result.returncode == 0, result.stderr[-3000:]
    built = {p.name for p in (project_copy / "build/api/pipelines").iterdir()}
    assert set(PIPELINES) <= built, built
