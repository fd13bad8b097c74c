"""Bad parameters fail at the start of a node with ONE error that lists every bad key and what was expected."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from comet_pipeline.config import ConfigError, ContaminationParams, DataParams, EvaluationParams, FeatureParams, parse
from comet_pipeline.experiment import parse_model_setups
from comet_pipeline.pipelines.data_ingestion.nodes import contaminate_train, ingest
from comet_pipeline.pipelines.training_nodes import train_models
from comet_pipeline.sweep import SweepParams
from comet_pipeline.training.trainer import CoMetConfig, TrainConfig


def _problems(excinfo: pytest.ExceptionInfo[ConfigError]) -> str:
    return "\n".join(excinfo.value.problems)


def test_train_config_reports_every_bad_value_at_once() -> None:
    with pytest.raises(ValueError) as excinfo:
        TrainConfig(epochs=0, lr=-1.0, optimizer="rmsprop", on_nonfinite="ignore")
    message = str(excinfo.value)
    for key in ("epochs", "lr", "optimizer", "on_nonfinite"):
        assert f"{key}: expected" in message, key
    with pytest.raises(ValueError) as excinfo:
        CoMetConfig(kappa=-1.0, inner_lr=0.0, window=1, meta_order="third")
    for key in ("kappa", "inner_lr", "window", "meta_order"):
        assert f"{key}: expected" in str(excinfo.value), key


def test_training_node_lists_every_bad_key_before_any_work(tmp_path: Path) -> None:
    train = {
        "models": ["flow", "resnet"],  # unknown model
        "modles": [],  # typo of a top-level key
        "checkpoints": "yes",
        "flow": {
            "model": {"n_blockz": 2},
            "optim": {"epochs": 0, "lr": 0.0, "batch_size": "8", "checkpoint_dir": "x", "bogus": 1},
        },
    }
    comet = {"kappa": -0.5}
    with pytest.raises(ConfigError) as excinfo:  # manifest/features are never touched
        train_models(None, pd.DataFrame({"category": ["a"]}), {"backbone": "resnet9000"}, train, comet)
    text = _problems(excinfo)
    assert "features.backbone='resnet9000': expected one of ['alexnet', 'mobilenet_v2', 'wide_resnet50_2']" in text
    with pytest.raises(ConfigError) as excinfo:
        train_models(None, pd.DataFrame({"category": ["a"]}), {}, train, comet)
    text = _problems(excinfo)
    for expected in (
        "train.models: unknown model 'resnet'",
        "train.modles: unknown key",
        "train.checkpoints: got 'yes', expected true or false",
        "train.flow.model.n_blockz: unknown key",
        "train.flow.optim.bogus: unknown key",
        "train.flow.optim.batch_size: got '8', expected int",
        "train.flow.optim.checkpoint_dir: not set per model",
        "train.flow.optim.epochs: expected an integer >= 1, got 0",  # reported although batch_size has a bad type
        "train.flow.optim.lr: expected a finite number > 0.0, got 0.0",
    ):
        assert expected in text, expected
    with pytest.raises(ConfigError, match=r"comet\.kappa: expected a finite number >= 0.0, got -0.5"):
        train_models(None, pd.DataFrame({"category": ["a"]}), {}, {"models": ["flow"]}, comet)


@pytest.mark.parametrize(
    ("node", "kwargs", "expected"),
    [
        (contaminate_train, {"samples": None, "contamination": {"ratio": 1.5, "seed": -1}},
         ["contamination.ratio=1.5: expected 0 <= ratio <= 1", "contamination.seed=-1: expected >= 0"]),
        (contaminate_train, {"samples": None, "contamination": {"ratio": -0.1}},
         ["contamination.ratio=-0.1: expected 0 <= ratio <= 1"]),
        (ingest, {"data": {"layout": "visa", "source": "web", "categories": [], "on_eror": "skip"}},
         ["data.layout: got 'visa', expected one of 'mvtec', 'ksdd2'", "data.source: got 'web'",
          "data.on_eror: unknown key", "data.categories: expected at least one category"]),
        (ingest, {"data": {"builtin": {"n_train": 2, "image_size": 16, "colour": True}}},
         ["data.builtin.n_train=2: expected >= 4", "data.builtin.image_size=16: expected >= 32",
          "data.builtin.colour: unknown key"]),
    ],
    ids=["ratio-and-seed", "negative-ratio", "layout-source-keys", "builtin-block"],
)
def test_nodes_report_all_problems_in_one_error(node, kwargs, expected) -> None:
    with pytest.raises(ConfigError) as excinfo:
        node(**kwargs)
    text = _problems(excinfo)
    for item in expected:
        assert item in text, item
    assert len(excinfo.value.problems) >= len(expected)


def test_nested_evaluation_threshold_is_checked_at_parse_time() -> None:
    with pytest.raises(ConfigError) as excinfo:
        parse(EvaluationParams, {"map_size": 4, "threshold": {"kappa": -1.0, "method": "max"}}, "evaluation")
    text = _problems(excinfo)
    assert "evaluation.map_size=4: expected >= 8" in text
    assert "evaluation.threshold.kappa=-1.0: expected a finite number >= 0" in text
    assert "evaluation.threshold.method: got 'max', expected one of 'iqr', 'quantile'" in text


@pytest.mark.parametrize(
    ("cls", "group", "key"),
    [(DataParams, "data", "root"), (FeatureParams, "features", "cache_dir"), (SweepParams, "noise_sweep", "results_dir")],
)
def test_relative_paths_must_stay_inside_the_project(tmp_path: Path, monkeypatch, cls, group, key) -> None:
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    for bad in ("../elsewhere", "data/../../elsewhere", "..", ""):
        with pytest.raises(ConfigError, match=rf"{group}\.{key}: ") as excinfo:
            parse(cls, {key: bad}, group)
        assert len(excinfo.value.problems) == 1
    for good in ("data/x", "./data/../data/x", str(tmp_path / "elsewhere")):  # inside, or absolute (explicit)
        assert getattr(parse(cls, {key: good}, group), key) == good


@pytest.mark.parametrize("workers", [0, -1, 1.5, True, "2"])
def test_workers_must_be_a_positive_int(workers) -> None:
    with pytest.raises(ConfigError, match="noise_sweep.workers"):
        parse(SweepParams, {"workers": workers}, "noise_sweep")
    with pytest.raises(ConfigError, match="train.workers"):
        parse_model_setups({"models": ["flow"], "workers": workers})


def test_model_setups_and_parsed_groups_accept_the_shipped_parameters() -> None:
    import yaml

    conf = Path(__file__).resolve().parents[2] / "conf" / "base"
    params: dict = {}
    for file in sorted(conf.glob("parameters_*.yml")):
        params.update(yaml.safe_load(file.read_text()))
    assert [s.name for s in parse_model_setups(params["train"])] == params["train"]["models"]
    parse(DataParams, params["data"], "data")
    parse(ContaminationParams, params["contamination"], "contamination")
    parse(FeatureParams, params["features"], "features")
    parse(EvaluationParams, params["evaluation"], "evaluation")
    parse(SweepParams, params["noise_sweep"], "noise_sweep")
    parse(CoMetConfig, params["comet"], "comet")
