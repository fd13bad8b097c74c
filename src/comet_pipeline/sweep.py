"""The noise sweep (the paper's Fig. 5): metrics vs contamination ratio, baseline vs CoMet.

Cells are (ratio, seed, category, model, strategy). Each finished cell is
written as one JSON file named by a hash of everything that determines its
result — the parameters, the sample table and the package's source code — so an
interrupted or repeated sweep only computes missing cells and a change of any
parameter or of the code never reuses stale results.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import itertools
import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd

from comet_pipeline.atomic import atomic_write
from comet_pipeline.config import PROJECT_PATH, EvaluationParams, FeatureParams, require
from comet_pipeline.data.contamination import contaminate
from comet_pipeline.experiment import ModelSetup, evaluate_cell, load_category, train_cell, training_tables
from comet_pipeline.parallel import map_jobs
from comet_pipeline.training.trainer import CoMetConfig

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class SweepParams:
    """Grid of the sweep (``noise_sweep``)."""

    ratios: tuple[float, ...] = (0.0, 0.02, 0.04, 0.06, 0.08, 0.10)
    seeds: tuple[int, ...] = (0, 1, 2)
    models: tuple[str, ...] = ("flow", "simplenet")
    strategies: tuple[str, ...] = ("baseline", "comet")
    categories: tuple[str, ...] | None = None
    results_dir: str = dataclasses.field(default="data/07_model_output/noise_sweep", metadata=PROJECT_PATH)
    workers: int = 1

    def __post_init__(self) -> None:
        require(len(self.ratios) > 0, "noise_sweep.ratios: expected at least one ratio")
        require(all(0 <= r <= 1 for r in self.ratios), f"noise_sweep.ratios={list(self.ratios)}: expected values in [0, 1]")
        require(len(self.seeds) > 0, "noise_sweep.seeds: expected at least one seed")
        bad = sorted(set(self.strategies) - {"baseline", "comet"})
        require(not bad, f"noise_sweep.strategies: unknown {bad}; expected 'baseline' and/or 'comet'")
        require(
            isinstance(self.workers, int) and not isinstance(self.workers, bool) and self.workers >= 1,
            f"noise_sweep.workers: expected an integer >= 1, got {self.workers!r}",
        )


def code_fingerprint() -> str:
    """SHA-256 of every ``.py`` file of the ``comet_pipeline`` package (path and content)."""
    package = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _cell_key(cell: dict[str, Any], context: dict[str, Any]) -> str:
    blob = json.dumps({"cell": cell, "context": context}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclasses.dataclass(frozen=True)
class _Block:
    """The unfinished cells of one (ratio, seed): they share one contamination draw."""

    ratio: float
    seed: int
    cells: tuple[tuple[str, str, str, str], ...]  # (category, model, strategy, result file)


def _run_block(
    block: _Block,
    samples: pd.DataFrame,
    setups: dict[str, ModelSetup],
    comet: CoMetConfig,
    features: FeatureParams,
    evaluation: EvaluationParams,
    overlap: bool,
) -> None:
    """Train and evaluate the block's cells; each result is written to its file as soon as it is done."""
    manifest, _ = contaminate(samples, ratio=block.ratio, seed=block.seed, overlap=overlap)
    loaded: dict[str, Any] = {}
    for category, model, strategy, file in block.cells:
        if category not in loaded:
            loaded[category] = load_category(manifest, category, features)
        data = loaded[category]
        result = train_cell(data, setups[model], comet if strategy == "comet" else CoMetConfig(), seed=block.seed)
        _, _, train_scores = training_tables(f"{category}__{model}", result)
        metrics, _ = evaluate_cell(result.model, data, train_scores, evaluation)
        cell = {"ratio": block.ratio, "seed": block.seed, "category": category, "model": model, "strategy": strategy}
        row = {**cell, **metrics, "train_seconds": float(result.history["seconds"].sum())}
        atomic_write(file, lambda handle: handle.write(json.dumps(row, default=float).encode()))


def run_sweep(
    samples: pd.DataFrame,
    params: SweepParams,
    setups: list[ModelSetup],
    comet: CoMetConfig,
    features: FeatureParams,
    evaluation: EvaluationParams,
    overlap: bool = False,
) -> pd.DataFrame:
    """Run (or resume) every cell; return one row of metrics per cell, in grid order.

    With ``params.workers > 1`` the unfinished (ratio, seed) blocks run in that many
    worker processes (:func:`comet_pipeline.parallel.map_jobs`, which also says how
    the thread count changes the last digits).
    """
    setups_by_name = {s.name: s for s in setups}
    missing = sorted(set(params.models) - set(setups_by_name))
    require(not missing, f"noise_sweep.models: {missing} have no block in the train parameters")
    categories = list(params.categories or sorted(samples["category"].unique()))
    out_dir = Path(params.results_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    context = {
        "samples": hashlib.sha256(pd.util.hash_pandas_object(samples, index=False).values.tobytes()).hexdigest(),
        "features": dataclasses.asdict(features),
        "evaluation": dataclasses.asdict(evaluation),
        "comet": dataclasses.asdict(comet),
        "setups": {s.name: {"kwargs": s.kwargs, "train": dataclasses.asdict(s.train)} for s in setups},
        "overlap": overlap,
        "code": code_fingerprint(),
    }
    paths: dict[tuple, Path] = {}
    blocks = []
    for ratio, seed in itertools.product(params.ratios, params.seeds):
        todo = []
        for category, model, strategy in itertools.product(categories, params.models, params.strategies):
            cell = {"ratio": ratio, "seed": seed, "category": category, "model": model, "strategy": strategy}
            path = paths[tuple(cell.values())] = out_dir / f"{_cell_key(cell, context)}.json"
            if not path.exists():
                todo.append((category, model, strategy, str(path)))
        if todo:
            blocks.append(_Block(ratio, seed, tuple(todo)))
    n_todo = sum(len(b.cells) for b in blocks)
    logger.info(
        "noise sweep: %d cells, %d reused from %s, %d to run in %d block(s), %d worker(s)",
        len(paths), len(paths) - n_todo, out_dir, n_todo, len(blocks), params.workers,
    )
    run_block = functools.partial(
        _run_block,
        samples=samples,
        setups={m: setups_by_name[m] for m in params.models},
        comet=comet,
        features=features,
        evaluation=evaluation,
        overlap=overlap,
    )
    map_jobs(run_block, blocks, params.workers, "noise sweep", sizes=[len(b.cells) for b in blocks], unit="cell")
    return pd.DataFrame([json.loads(path.read_text()) for path in paths.values()])
