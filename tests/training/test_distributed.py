"""Data-parallel training: 2 gloo processes launched by torchrun give the single-process result.

The flow's loss draws no noise, so DDP training with confidence weighting and
covariance regularisation must reproduce one-process training up to float
rounding: same parameters, threshold ``t`` and weights per epoch, history.
Meta-learning and SimpleNet are not equal to one process (per-rank tasks,
per-rank noise), but every rank must hold the same result. The same torchrun
launch (ddp_script.py) also runs ``comet-pipeline train`` on a tiny project.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.distributed

from ddp_cases import CASES, KAPPA, initial_model, make_features, run_case, summary

from comet_pipeline.comet.confidence import confidence_weights
from comet_pipeline.command_line import EXIT_ERROR, TRAIN_OUTPUTS, main
from comet_pipeline.data.contamination import contaminate
from comet_pipeline.data.readers import read_dataset
from comet_pipeline.data.synthetic import generate_dataset
from comet_pipeline.models import load_model
from comet_pipeline.training import distributed
from comet_pipeline.training.distributed import SINGLE, DistContext, interleave

HERE = Path(__file__).parent
REPO = HERE.parents[1]
SRC = REPO / "src"
#: ``comet-pipeline train`` on the tiny project: a small flow, CoMet without meta-learning (equal to one process)
TINY = (
    "features.resolution=64,features.rotations=[0],features.device=cpu,"
    "train.flow.model.n_blocks=2,train.flow.model.hidden=16,train.flow.model.grid=4,"
    "train.flow.optim.epochs=3,train.flow.optim.batch_size=4,train.flow.optim.device=cpu,"
    "comet.meta_learning=false,comet.warmup_epochs=1,comet.window=3,comet.kappa=0.0"
)
TRAIN_ARGS = ("--category", "brick", "--model", "flow", "--strategy", "comet", "--seed", "3", "--params", TINY)
ATOL = 1e-5  # measured on 2 CPU cores: parameters <= 6e-8, scores and weights <= 5e-7 apart (float32 rounding)

pytestmark = pytest.mark.skipif(
    not (torch.distributed.is_available() and torch.distributed.is_gloo_available()),
    reason="torch.distributed with the gloo backend is not available in this torch build",
)


def torchrun(*args: str, timeout: int = 240) -> subprocess.CompletedProcess:
    """``python -m torch.distributed.run --standalone --nproc_per_node 2 ARGS`` with this checkout's src first."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
        "OMP_NUM_THREADS": "1",
        "KEDRO_DISABLE_TELEMETRY": "true",
    }
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    assert proc.returncode == 0, f"torchrun failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's conf plus a manifest of one tiny built-in category (what data_ingestion writes)."""
    root = tmp_path_factory.mktemp("project")
    shutil.copytree(REPO / "conf", root / "conf", ignore=shutil.ignore_patterns("local"))
    (root / "conf" / "local").mkdir()
    images = generate_dataset(
        root / "data" / "01_raw" / "builtin", categories=["brick"], n_train=10, n_test_good=3,
        n_test_defect_per_type=2, image_size=64,
    )
    samples, _ = read_dataset(images, ["brick"])
    manifest, _ = contaminate(samples, ratio=0.2, seed=0)
    (root / "data" / "03_primary").mkdir(parents=True)
    manifest.to_parquet(root / "data" / "03_primary" / "manifest.parquet")
    return root


@pytest.fixture(scope="module")
def ddp(project: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict, np.ndarray]:
    """Both ranks' summaries of every case of ddp_cases, trained by ddp_script.py under torchrun.

    Before the launch ``comet-pipeline train`` runs in this process (one process, output
    ``single/``; it also fills the feature cache); the launch runs it again (output ``multi/``).
    """
    out = tmp_path_factory.mktemp("ddp")
    features = make_features()
    np.save(out / "features.npy", features)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(project)
        assert main(["train", *TRAIN_ARGS, "--output", "single"]) == 0
    script_args = (str(out / "features.npy"), str(out), str(project))
    proc = torchrun(str(HERE / "ddp_script.py"), *script_args, *TRAIN_ARGS, "--output", "multi")
    assert "(comet, 2 process(es)): wrote model.pt" in proc.stdout
    ranks = [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(2)]
    return ranks[0], ranks[1], features


def _assert_identical(a: dict, b: dict) -> None:
    assert a["state"].keys() == b["state"].keys()
    for name in a["state"]:
        assert torch.equal(a["state"][name], b["state"][name]), name
    np.testing.assert_equal({k: v for k, v in a.items() if k != "state"}, {k: v for k, v in b.items() if k != "state"})


def _thresholds(s: dict) -> list[float]:
    """The threshold ``t`` of every weighting (each re-weighting epoch, then the final one), from its scores."""
    frame = pd.DataFrame({**s["weights"], "score": s["scores"]})
    groups = frame.groupby(["final", "epoch"])
    return [confidence_weights(torch.tensor(g["score"].to_numpy()), KAPPA)[1] for _, g in groups]


def test_every_rank_returns_the_same_result(ddp) -> None:
    rank0, rank1, _ = ddp
    assert set(rank0) == {*CASES, "flow_resumed", "checkpoint_files"}
    for case in (*CASES, "flow_resumed"):
        _assert_identical(rank0[case], rank1[case])
        assert all(np.isfinite(rank0[case]["history"]["train_loss"])), case


def test_ddp_flow_equals_single_process_training(ddp) -> None:
    rank0, _, features = ddp
    multi, single = rank0["flow"], summary(run_case("flow", features))

    assert multi["train_ids"] == single["train_ids"] and multi["val_ids"] == single["val_ids"]
    for name, param in single["state"].items():
        torch.testing.assert_close(multi["state"][name], param, atol=ATOL, rtol=0, msg=name)
    for column, values in single["history"].items():
        np.testing.assert_allclose(multi["history"][column], values, atol=ATOL, rtol=1e-5, err_msg=column)
    assert sum(single["history"]["n_weighted"]) > 0  # some images were really down-weighted
    assert multi["history"]["n_weighted"] == single["history"]["n_weighted"]
    assert max(single["history"]["lambda"]) > 0  # the L2 term took part (DDP must apply it once, not twice)

    for column in ("epoch", "sample_id", "final"):
        assert multi["weights"][column] == single["weights"][column], column
    np.testing.assert_allclose(multi["weights"]["weight"], single["weights"]["weight"], atol=ATOL, rtol=0)
    np.testing.assert_allclose(multi["scores"], single["scores"], rtol=1e-5, atol=ATOL)
    np.testing.assert_allclose(_thresholds(multi), _thresholds(single), rtol=1e-5)
    assert multi["final_weights"].keys() == single["final_weights"].keys()
    np.testing.assert_allclose(list(multi["final_weights"].values()), list(single["final_weights"].values()), atol=ATOL)
    np.testing.assert_allclose(multi["val_scores"], single["val_scores"], rtol=1e-5, atol=ATOL)


def test_ddp_skips_the_same_non_finite_batches_as_one_process(ddp) -> None:
    """NaN features on one rank: the step's loss is reduced over ranks, so every rank skips that batch together."""
    rank0, _, features = ddp
    multi, single = rank0["flow_skip"], summary(run_case("flow_skip", features))
    assert multi["history"]["n_skipped"] == single["history"]["n_skipped"] and sum(single["history"]["n_skipped"]) > 0
    for name, param in single["state"].items():
        torch.testing.assert_close(multi["state"][name], param, atol=ATOL, rtol=0, msg=name)
    np.testing.assert_allclose(multi["history"]["train_loss"], single["history"]["train_loss"], rtol=1e-5)


def test_ddp_checkpoint_written_once_and_resumed_on_every_rank(ddp) -> None:
    """Rank 0 writes one checkpoint per run; the finished run's checkpoint (broadcast by rank 0) is returned as is."""
    rank0, _, _ = ddp
    assert rank0["checkpoint_files"] == ["checkpoint.pt"] * len(CASES)
    _assert_identical(rank0["flow"], rank0["flow_resumed"])


def test_meta_learning_and_simplenet_train_data_parallel(ddp) -> None:
    """Not equal to one process (per-rank tasks, per-rank noise), but trained: finite and moved from the start."""
    rank0, _, _ = ddp
    for case in ("flow_meta", "simplenet"):
        start = initial_model(case).state_dict()
        state = rank0[case]["state"]
        assert all(bool(torch.isfinite(t).all()) for t in state.values() if t.is_floating_point()), case
        assert any(not torch.equal(state[name], start[name]) for name in start), case


def test_shard_and_interleave_restore_the_order() -> None:
    for world in range(1, 5):
        for total in range(0, 10):
            x = torch.arange(total, dtype=torch.float32) * 10
            size = -(-total // world)
            pieces = []
            for rank in range(world):
                part = DistContext(rank, world).shard(x)
                assert torch.equal(part, x[rank::world])
                pieces.append(torch.cat([part, torch.full((size - len(part),), -1.0)]))
            assert torch.equal(interleave(pieces, total), x), (world, total)


def test_single_process_context_is_the_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in distributed.ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    assert distributed.current() is SINGLE and distributed.init_from_environment() is SINGLE
    assert not SINGLE.active and SINGLE.is_main and SINGLE.rank_seed(7) == 7
    x = torch.tensor([1.0, 2.0, 4.0])
    grads = {"a": x}
    assert SINGLE.shard(x) is x and SINGLE.gather(x, 3) is x and SINGLE.average(grads, 1.0) is grads
    assert SINGLE.mean(x) == float(x.mean()) and SINGLE.sums(x.sum(), 3) == [7.0, 3.0]
    assert SINGLE.broadcast({"k": 1}) == {"k": 1} and SINGLE.gather_objects(5) == [5]
    assert SINGLE.train_device(torch.device("cpu")) == torch.device("cpu")
    assert DistContext(1, 2).rank_seed(7) != 7  # other ranks draw their own model noise


def test_torchrun_environment_must_be_complete(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in distributed.ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(RuntimeError, match="RANK, LOCAL_RANK, MASTER_ADDR, MASTER_PORT not set; launch with torchrun"):
        distributed.init_from_environment()
    with pytest.raises(ValueError, match="nccl backend"):
        DistContext(0, 2, backend="nccl").train_device(torch.device("cpu"))


def test_train_command_under_torchrun_equals_one_process(ddp, project: Path) -> None:
    """``comet-pipeline train``: rank 0 writes the outputs; model, history, weights and scores match one process."""
    single, multi = project / "single", project / "multi"
    assert sorted(p.name for p in multi.iterdir()) == sorted(TRAIN_OUTPUTS)
    a, b = load_model(single / "model.pt"), load_model(multi / "model.pt")
    for name, param in a.state_dict().items():
        torch.testing.assert_close(b.state_dict()[name], param, atol=ATOL, rtol=0, msg=name)
    for table in TRAIN_OUTPUTS[1:]:
        one, two = (pd.read_csv(folder / table).drop(columns="seconds", errors="ignore") for folder in (single, multi))
        assert list(one.columns) == list(two.columns) and len(one) == len(two), table
        numeric = list(one.select_dtypes("number").columns)
        pd.testing.assert_frame_equal(one.drop(columns=numeric), two.drop(columns=numeric))
        np.testing.assert_allclose(
            two[numeric].to_numpy(float), one[numeric].to_numpy(float), atol=ATOL, rtol=1e-5, err_msg=table
        )
    weights = pd.read_csv(multi / "weights.csv")
    assert (weights["weight"] < 1).any()  # kappa 0: the comparison covers down-weighted images


def test_train_command_reports_bad_arguments(project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.chdir(project)
    args = ["train", "--model", "flow", "--strategy", "comet", "--output", str(tmp_path / "out")]
    assert main([*args, "--category", "nope"]) == EXIT_ERROR
    assert "--category 'nope': not in the manifest; expected one of ['brick']" in capsys.readouterr().err
    assert main([*args, "--category", "brick", "--params", "comet.kappa"]) == EXIT_ERROR
    assert "--params: expected key=value items" in capsys.readouterr().err
    assert main([*args, "--category", "brick", "--params", "comet.kapa=1"]) == EXIT_ERROR
    assert "comet.kapa: unknown key" in capsys.readouterr().err
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "model.pt").write_bytes(b"")
    assert main([*args, "--category", "brick"]) == EXIT_ERROR
    assert "pass --overwrite" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--category", "brick", "--model", "gmm", "--strategy", "comet", "--output", "x"])
    assert exit_info.value.code == 2 and "invalid choice: 'gmm'" in capsys.readouterr().err
    monkeypatch.chdir(tmp_path)
    assert main([*args, "--category", "brick", "--output", str(tmp_path / "other")]) == EXIT_ERROR
    assert "configuration folder 'conf' not found" in capsys.readouterr().err
