"""End-to-end runs of every pipeline on tiny generated data (a copy of the project in tmp_path)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.slow


def test_data_ingestion_writes_manifest_with_injected_images(kedro_project):
    kedro_project(["data_ingestion"])
    manifest = pd.read_parquet("data/03_primary/manifest.parquet")
    summary = pd.read_csv("data/08_reporting/contamination_summary.csv")
    assert set(manifest["category"]) == {"brick", "widget"}
    injected = manifest[manifest["injected"]]
    # ratio 0.2 of 10 clean train images per category = 2 injected each, all anomalous, all in train
    assert injected.groupby("category").size().to_dict() == {"brick": 2, "widget": 2}
    assert (injected["split"] == "train").all() and (injected["label"] == 1).all()
    assert not set(injected["path"]) & set(manifest.loc[manifest["split"] == "test", "path"])
    assert summary["n_injected"].tolist() == [2, 2]


def test_demo_runs_end_to_end_and_reports(kedro_project):
    kedro_project(["data_ingestion", "feature_extraction", "train_baseline", "train_comet", "evaluation", "reporting"])
    results = pd.read_csv("data/08_reporting/evaluation_results.csv")
    assert len(results) == 2 * 2 * 2  # categories x models x strategies
    assert results["i_auroc"].between(0, 1).all()
    assert set(results["strategy"]) == {"baseline", "comet"}
    metrics = json.loads(Path("data/08_reporting/metrics.json").read_text())
    summary = pd.read_csv("data/08_reporting/summary.csv")
    mean_nf = summary[(summary["category"] == "mean") & (summary["method"] == "CoMet-NF")]["i_auroc_mean"].item()
    assert metrics["mean/CoMet-NF/i_auroc"] == pytest.approx(mean_nf)
    html = Path("data/08_reporting/report.html").read_text()
    assert "<img" in html and "http" not in html.split("<body>")[1]
    assert (Path("data/08_reporting/figures") / "curation_weights.png").stat().st_size > 0
    assert Path("data/06_models/comet/brick__flow.pt").exists()


@pytest.mark.parametrize("workers", [1, 2])
def test_baseline_and_all_off_comet_pipelines_give_identical_models(kedro_project, workers):
    """Also with the trainings in 2 worker processes (models travel back as payloads)."""
    off = {"confidence_weighting": False, "covariance_regularization": False, "meta_learning": False}
    params = {"comet": off, "train": {"workers": workers}}
    kedro_project(["data_ingestion", "feature_extraction", "train_baseline", "train_comet"], params)
    baseline = pd.read_parquet("data/07_model_output/baseline_train_scores.parquet")
    comet = pd.read_parquet("data/07_model_output/comet_train_scores.parquet")
    pd.testing.assert_frame_equal(baseline, comet)
    assert len(baseline["key"].unique()) == 4  # 2 categories x 2 models


def test_noise_sweep_quick_is_resumable(kedro_project):
    """Two (ratio, seed) blocks in two worker processes; a second run reuses every cell."""
    params = {
        "noise_sweep": {"ratios": [0.0, 0.2], "seeds": [0], "models": ["flow"], "categories": ["brick"], "workers": 2}
    }
    kedro_project(["data_ingestion", "noise_sweep"], params)
    first = pd.read_csv("data/08_reporting/noise_sweep/sweep_results.csv")
    assert len(first) == 2 * 2  # ratios x strategies
    cells = sorted(Path("data/07_model_output/noise_sweep").glob("*.json"))
    stamps = [c.stat().st_mtime_ns for c in cells]
    kedro_project(["noise_sweep"], params)
    assert [c.stat().st_mtime_ns for c in cells] == stamps  # nothing recomputed
    pd.testing.assert_frame_equal(pd.read_csv("data/08_reporting/noise_sweep/sweep_results.csv"), first)
    assert Path("data/08_reporting/noise_sweep/sweep_plot.png").stat().st_size > 0


def test_notebook_replots_the_demo_outputs(kedro_project):
    """The notebook is stored without outputs and its cells run against a finished demo's catalog."""
    from kedro.framework.session import KedroSession

    kedro_project(["data_ingestion", "feature_extraction", "train_baseline", "train_comet", "evaluation"])
    notebook = json.loads((Path(__file__).parents[2] / "notebooks/results_exploration.ipynb").read_text())
    code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    assert all(c["outputs"] == [] and c["execution_count"] is None for c in code)
    with KedroSession.create(project_path=Path.cwd()) as session:
        namespace = {"catalog": session.load_context().catalog}
    for cell in code:
        source = "".join(cell["source"])
        if source.startswith("%load_ext") or "sweep_results" in source:
            continue  # the magic defines `catalog` (done above); the sweep needs its own run
        exec(compile(source, "notebook-cell", "exec"), namespace)


def test_sweep_cell_keys_change_with_the_code(tmp_path, monkeypatch):
    """A finished cell is reused only by the same code: editing any module changes the fingerprint."""
    import shutil

    import comet_pipeline
    from comet_pipeline import sweep

    package = tmp_path / "comet_pipeline"
    shutil.copytree(Path(comet_pipeline.__file__).parent, package, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(sweep, "__file__", str(package / "sweep.py"))
    before = sweep.code_fingerprint()
    assert sweep.code_fingerprint() == before
    (package / "models" / "flow.py").write_text((package / "models" / "flow.py").read_text() + "\n# edited\n")
    assert sweep.code_fingerprint() != before
