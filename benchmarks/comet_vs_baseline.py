"""Baseline vs CoMet on the built-in data with 10 % contamination — the key experiment of the CoMet issue.

For every seed (it drives both the contamination draw and training), category
and model (flow, SimpleNet) the detector is trained twice on the same
contaminated training set: baseline (``CoMetConfig()``, every switch off) and
CoMet (``conf/base/parameters_train_comet.yml``). Each run is evaluated with
``experiment.evaluate_cell`` (label-free threshold from the held-out part of
the *training* data; test labels only for the metrics). Reported:

- test I-AUROC baseline vs CoMet per model, per category and mean over categories, per seed and mean over seeds;
- precision / recall / F1 at the label-free threshold (and P-AUROC, AUPRO, F1-max);
- curation AUROC of CoMet's final weights (AUROC of ``1 − w`` for the injected training
  images), next to the AUROC of the raw training scores of the same final model (and of the
  baseline model): how much of the model's ranking the weights keep; and of the mean weight
  each training image got over the re-weighting epochs;
- an ablation on seed 0: each CoMet component alone and ``meta_order: second``;
- training seconds per run (the overhead benchmark is ``benchmarks/training_overhead.py``).

Every finished cell is appended to ``data/08_reporting/benchmarks/comet_vs_baseline_cells.jsonl``;
``--resume`` skips cells already there (the run takes long; it can be stopped and continued),
``--report-only`` just rebuilds the tables from that file. Nothing is tuned on test metrics:
all hyper-parameters are the project defaults.

Run: ``python -m benchmarks.comet_vs_baseline [--quick] [--resume] [--part main|ablation|all]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks._common import (
    REPORT_DIR,
    builtin_samples,
    comet_config,
    contaminated,
    feature_params,
    load_params,
    markdown,
    model_setups,
    quiet_logs,
    write_report,
)

CELLS = REPORT_DIR / "comet_vs_baseline_cells.jsonl"
SEEDS = (0, 1, 2)
QUICK_CATEGORIES = ("brick", "widget")  # one texture, one object
ABLATIONS = ("only_confidence_weighting", "only_covariance_regularization", "only_meta_learning", "comet_meta_second")
METRICS = ("i_auroc", "p_auroc", "aupro", "f1_max", "precision", "recall", "f1", "threshold")


def strategy_config(params: dict, strategy: str):
    """The CoMet switches of a named strategy (baseline, comet, or an ablation)."""
    from comet_pipeline.training.trainer import CoMetConfig

    off = dict(confidence_weighting=False, covariance_regularization=False, meta_learning=False)
    if strategy == "baseline":
        return CoMetConfig()
    if strategy == "comet":
        return comet_config(params)
    if strategy == "comet_meta_second":
        return comet_config(params, meta_order="second")
    if strategy.startswith("only_"):
        component = strategy[len("only_"):]
        return comet_config(params, **{**off, component: True})
    raise ValueError(f"unknown strategy {strategy!r}")


def run_cell(data, setup, strategy: str, seed: int, params: dict, eval_params) -> dict:
    """Train + evaluate one (seed, category, model, strategy) cell; a flat result row."""
    from comet_pipeline.evaluation.metrics import image_auroc
    from comet_pipeline.experiment import evaluate_cell, train_cell, training_tables

    config = strategy_config(params, strategy)
    start = time.perf_counter()
    result = train_cell(data, setup, config, seed=seed)
    train_seconds = time.perf_counter() - start
    key = f"{data.category}__{setup.name}__{strategy}__seed{seed}"
    _, _, final = training_tables(key, result)
    metrics, _ = evaluate_cell(result.model, data, final, eval_params)
    is_injected = data.train.set_index("sample_id")["injected"]
    injected = is_injected.reindex(final["sample_id"]).to_numpy(dtype=bool)
    weights = final["weight"].to_numpy()
    steps = int(np.ceil(len(result.train_ids) / setup.train.batch_size)) * setup.train.epochs
    # AUROC of the training images' scores at every re-weighting epoch (CoMet runs): how the ranking evolves
    during = result.weights[~result.weights["final"]]
    by_epoch = {}
    for epoch, g in during.groupby("epoch"):
        y = is_injected.reindex(g["sample_id"]).to_numpy(dtype=bool)
        by_epoch[str(int(epoch))] = image_auroc(y, g["score"].to_numpy()) if 0 < y.sum() < len(y) else float("nan")
    row = {
        "seed": seed,
        "category": data.category,
        "model": setup.name,
        "strategy": strategy,
        **{k: float(metrics[k]) for k in METRICS},
        "curation_auroc": float(metrics["curation_auroc"]),
        "curation_auroc_mean_weight": float(metrics["curation_auroc_mean_weight"]),
        # the same final model's raw training scores: the ranking the weights are computed from
        "score_auroc": image_auroc(injected, final["score"].to_numpy()) if injected.any() else float("nan"),
        "n_train_images": len(final),
        "n_injected": int(injected.sum()),
        "n_w_below_1": int((weights < 1).sum()),
        "n_injected_w_below_1": int((weights[injected] < 1).sum()),
        "train_seconds": train_seconds,
        "steps": steps,
        "final_lambda": float(result.history["lambda"].iloc[-1]),
        "final_val_loss": float(result.history["val_loss"].iloc[-1]),
        "score_auroc_by_epoch": by_epoch,
    }
    return row


def read_cells(path: Path = CELLS) -> pd.DataFrame:
    if not path.exists():
        return pd.DataFrame()
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    # the last record of a cell wins (a rerun without --resume appends a newer one)
    return frame.drop_duplicates(["seed", "category", "model", "strategy"], keep="last").reset_index(drop=True)


def _done(frame: pd.DataFrame) -> set[tuple]:
    if frame.empty:
        return set()
    return set(frame[["seed", "category", "model", "strategy"]].itertuples(index=False, name=None))


# ---------------------------------------------------------------------------------------------- tables


def _pivot_auroc(main: pd.DataFrame, model: str) -> pd.DataFrame:
    sub = main[main["model"] == model]
    wide = sub.pivot_table(index=["seed", "category"], columns="strategy", values="i_auroc").reset_index()
    return wide


def paired(frame: pd.DataFrame, strategies: tuple[str, ...] = ("baseline", "comet")) -> pd.DataFrame:
    """Rows of ``strategies`` only for (seed, category, model) cells where every one of them finished."""
    sub = frame[frame["strategy"].isin(strategies)]
    if sub.empty:
        return sub
    counts = sub.groupby(["seed", "category", "model"])["strategy"].transform("nunique")
    return sub[counts == len(strategies)]


def auroc_table(frame: pd.DataFrame) -> str:
    """I-AUROC baseline vs CoMet per (seed, category), per-seed means and the mean over seeds.

    Means are over the cells where both strategies finished (paired), so a partial run stays fair.
    """
    main = paired(frame)
    rows = []
    models = sorted(main["model"].unique())
    cats = sorted(main["category"].unique())
    seeds = sorted(main["seed"].unique())

    def get(seed, cat, model, strategy):
        sel = main[(main["model"] == model) & (main["strategy"] == strategy)]
        if seed is not None:
            sel = sel[sel["seed"] == seed]
        if cat is not None:
            sel = sel[sel["category"] == cat]
        return float(sel["i_auroc"].mean()) if len(sel) else float("nan")

    def add(label_seed, label_cat, seed, cat):
        row = {"seed": label_seed, "category": label_cat}
        for m in models:
            b, c = get(seed, cat, m, "baseline"), get(seed, cat, m, "comet")
            row[f"{m} baseline"], row[f"{m} CoMet"], row[f"{m} Δ"] = b, c, c - b
        rows.append(row)

    for s in seeds:
        for cat in cats:
            add(s, cat, s, cat)
        add(s, "**mean**", s, None)
    for cat in cats:
        add("mean", cat, None, cat)
    add("mean", "**mean**", None, None)
    return markdown(pd.DataFrame(rows))


def threshold_table(frame: pd.DataFrame) -> str:
    """Label-free-threshold metrics (and the other test metrics) per model × strategy, per seed and mean."""
    main = paired(frame)
    cols = ["i_auroc", "p_auroc", "aupro", "f1_max", "precision", "recall", "f1"]
    per_seed = main.groupby(["model", "strategy", "seed"])[cols].mean().reset_index()
    mean = main.groupby(["model", "strategy"])[cols].mean().reset_index().assign(seed="mean")
    table = pd.concat([per_seed, mean], ignore_index=True)
    table["seed"] = table["seed"].astype(str)
    table = table.sort_values(["model", "strategy", "seed"])[["model", "strategy", "seed", *cols]]
    return markdown(table)


def curation_table(frame: pd.DataFrame) -> str:
    """Curation AUROC of CoMet's weights vs the ranking of its raw training scores (and the baseline's)."""
    comet = frame[frame["strategy"] == "comet"].set_index(["seed", "category", "model"])
    base = frame[frame["strategy"] == "baseline"].set_index(["seed", "category", "model"])
    if comet.empty:
        return "(no CoMet results yet)"
    table = pd.DataFrame(
        {
            "curation AUROC (1−w)": comet["curation_auroc"],
            "curation AUROC (1−mean w over training)": comet.get("curation_auroc_mean_weight"),
            "AUROC raw scores (CoMet model)": comet["score_auroc"],
            "AUROC raw scores (baseline model)": base["score_auroc"].reindex(comet.index),
            "images": comet["n_train_images"],
            "injected": comet["n_injected"],
            "w<1": comet["n_w_below_1"],
            "injected with w<1": comet["n_injected_w_below_1"],
        }
    ).reset_index()
    table = table.sort_values(["model", "seed", "category"])
    num = [c for c in table.columns if c not in ("seed", "category", "model")]
    means = table.groupby("model")[num].mean().reset_index().assign(seed="mean", category="**mean**")
    table = pd.concat([table, means], ignore_index=True)
    table["seed"] = table["seed"].astype(str)
    return markdown(table[["model", "seed", "category", *num]], digits=3)


def trajectory_table(frame: pd.DataFrame) -> str:
    """Mean (over seeds and categories) AUROC of CoMet's training scores for the injected images, per epoch."""
    comet = frame[frame["strategy"] == "comet"]
    if comet.empty or "score_auroc_by_epoch" not in comet:
        return "(no per-epoch scores recorded)"
    rows = []
    for model, sub in comet.groupby("model"):
        curves = pd.DataFrame([c for c in sub["score_auroc_by_epoch"] if isinstance(c, dict)])
        if curves.empty:
            continue
        curves.columns = curves.columns.astype(int)
        mean = curves[sorted(curves.columns)].mean()
        final = sub["score_auroc"].mean()
        rows.append({"model": model, "cells": len(curves), **{f"ep {e}": v for e, v in mean.items()}, "final model": final})
    if not rows:
        return "(no per-epoch scores recorded)"
    table = pd.DataFrame(rows)
    keep = ["model", "cells", *[c for c in table.columns if c.startswith("ep ")][::2], "final model"]
    return markdown(table[keep])


def ablation_table(frame: pd.DataFrame) -> str:
    """Seed 0: I-AUROC per category and mean, F1 and curation AUROC per strategy."""
    order = ["baseline", *ABLATIONS[:3], "comet", ABLATIONS[3]]
    sub = frame[(frame["seed"] == 0) & frame["strategy"].isin(order)]
    if sub.empty:
        return "(no ablation results yet)"
    rows = []
    for model in sorted(sub["model"].unique()):
        for strategy in order:
            sel = sub[(sub["model"] == model) & (sub["strategy"] == strategy)]
            if sel.empty:
                continue
            row = {"model": model, "strategy": strategy}
            for cat in sorted(sub["category"].unique()):
                hit = sel[sel["category"] == cat]["i_auroc"]
                row[cat] = float(hit.iloc[0]) if len(hit) else float("nan")
            row["mean I-AUROC"] = float(sel["i_auroc"].mean())
            row["categories"] = len(sel)
            base = sub[(sub["model"] == model) & (sub["strategy"] == "baseline")].set_index("category")["i_auroc"]
            paired_base = base.reindex(sel["category"]).to_numpy()
            row["Δ vs baseline (same categories)"] = float((sel["i_auroc"].to_numpy() - paired_base).mean())
            row["mean F1"] = float(sel["f1"].mean())
            row["mean curation AUROC"] = float(sel["curation_auroc"].mean())
            row["mean train s"] = float(sel["train_seconds"].mean())
            rows.append(row)
    return markdown(pd.DataFrame(rows))


def time_table(frame: pd.DataFrame) -> str:
    """Training seconds per strategy (machine shared with other jobs: indicative only).

    The main cells and the ablation cells may have run in different processes at the
    same time; compare ``baseline``/``comet`` with each other, ablations among themselves.
    """
    table = frame.groupby(["model", "strategy"]).agg(
        runs=("train_seconds", "size"), median_s=("train_seconds", "median"), min_s=("train_seconds", "min")
    ).reset_index()
    base = table[table["strategy"] == "baseline"].set_index("model")["median_s"]
    table["median / baseline median"] = table["median_s"] / table["model"].map(base)
    return markdown(table, digits=2)


def report(frame: pd.DataFrame, out_dir: Path = REPORT_DIR) -> str:
    out_dir.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out_dir / "comet_vs_baseline.csv", index=False)
    seeds = sorted(frame["seed"].unique().tolist()) if not frame.empty else []
    sections = [
        (
            "Setup",
            "Built-in data (`conf/base/parameters_data_ingestion.yml`), contamination ratio from the same file "
            "(no overlap); the seed drives contamination and training. Baseline = `CoMetConfig()`; CoMet = "
            "`conf/base/parameters_train_comet.yml`. Threshold: label-free (`evaluation.threshold`, from the "
            f"held-out training images). Seeds present: {seeds}. Cells: {len(frame)}.",
        ),
        ("Test I-AUROC, baseline vs CoMet", auroc_table(frame)),
        ("Metrics at the label-free threshold (mean over categories)", threshold_table(frame)),
        ("Curation: CoMet's final weights vs the raw training scores", curation_table(frame)),
        (
            "Ranking of the injected images by the training scores, per epoch (CoMet runs; every 2nd epoch)",
            trajectory_table(frame),
        ),
        ("Ablation (seed 0)", ablation_table(frame)),
        ("Training time per run", time_table(frame)),
    ]
    write_report(out_dir / "comet_vs_baseline.md", "CoMet vs baseline (10 % contamination)", sections)
    return "\n\n".join(f"## {h}\n\n{b}" for h, b in sections)


# ---------------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"seed 0 only, categories {QUICK_CATEGORIES}")
    parser.add_argument("--seeds", type=int, nargs="+", default=None)
    parser.add_argument("--categories", nargs="+", default=None)
    parser.add_argument("--models", nargs="+", default=None)
    parser.add_argument("--part", choices=("main", "ablation", "all"), default="all")
    parser.add_argument("--resume", action="store_true", help="skip cells already in the results file")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    args = parser.parse_args(argv)

    quiet_logs()
    if args.report_only:
        print(report(read_cells()))
        return

    import torch

    from comet_pipeline.config import EvaluationParams, parse
    from comet_pipeline.experiment import load_category

    if args.threads:
        torch.set_num_threads(args.threads)
    params = load_params()
    seeds = args.seeds or ([0] if args.quick else list(SEEDS))
    categories = args.categories or (list(QUICK_CATEGORIES) if args.quick else list(params["data"]["categories"]))
    setups = model_setups(params)
    models = args.models or list(setups)
    eval_params = parse(EvaluationParams, params["evaluation"], "evaluation")
    fparams = feature_params(params)
    samples = builtin_samples(params, categories)
    done = _done(read_cells()) if args.resume else set()

    plan: list[tuple[int, str, str, str]] = []
    if args.part in ("main", "all"):
        plan += [(s, c, m, st) for s in seeds for c in categories for m in models for st in ("baseline", "comet")]
    if args.part in ("ablation", "all"):
        plan += [(0, c, m, st) for c in categories for m in models for st in ABLATIONS]
    todo = [cell for cell in plan if cell not in done]
    print(f"{len(plan)} cells planned, {len(plan) - len(todo)} already done; torch threads {torch.get_num_threads()}",
          flush=True)

    CELLS.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    data_cache: dict[tuple[int, str], object] = {}
    for i, (seed, category, model, strategy) in enumerate(todo, 1):
        if (seed, category) not in data_cache:
            data_cache.clear()
            manifest = contaminated(samples, params, seed=seed)
            data_cache[(seed, category)] = load_category(manifest, category, fparams)
        data = data_cache[(seed, category)]
        row = run_cell(data, setups[model], strategy, seed, params, eval_params)
        with CELLS.open("a") as handle:
            handle.write(json.dumps(row) + "\n")
        elapsed = time.perf_counter() - started
        print(
            f"[{i}/{len(todo)} {elapsed / 60:5.1f} min] seed {seed} {category:7s} {model:9s} {strategy:31s} "
            f"I-AUROC {row['i_auroc']:.3f} F1 {row['f1']:.3f} curation {row['curation_auroc']:.3f} "
            f"scores {row['score_auroc']:.3f} ({row['train_seconds']:.0f} s)",
            flush=True,
        )
    print(report(read_cells()))
    print(f"\nwritten: {REPORT_DIR / 'comet_vs_baseline.md'} and .csv", file=sys.stderr)


if __name__ == "__main__":
    main()
