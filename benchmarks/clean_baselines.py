"""Both detectors trained on a CLEAN training set (ratio 0) vs a naive pixel-statistics score.

Prints and writes ``data/08_reporting/benchmarks/clean_baselines.md``: test I-AUROC
(and P-AUROC, AUPRO) per category of the flow and SimpleNet baselines with the
project defaults, beside the I-AUROC of the image's pixel mean and pixel std used
as anomaly scores (taking max(auc, 1 − auc), i.e. the better direction).

    python -m benchmarks.clean_baselines [--seed 0]
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from benchmarks._common import (
    REPORT_DIR,
    builtin_samples,
    feature_params,
    load_params,
    markdown,
    model_setups,
    quiet_logs,
    write_report,
)

def naive_auroc(test: pd.DataFrame) -> dict[str, float]:
    """I-AUROC of pixel mean and pixel std as scores (better direction)."""
    from comet_pipeline.data.images import load_rgb

    pixels = [load_rgb(p).astype(np.float64) for p in test["path"]]
    out = {}
    for name, statistic in (("pixel_mean", np.mean), ("pixel_std", np.std)):
        auc = roc_auc_score(test["label"], [statistic(x) for x in pixels])
        out[name] = max(auc, 1 - auc)
    return out

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    quiet_logs()
    from comet_pipeline.config import EvaluationParams, parse
    from comet_pipeline.experiment import evaluate_cell, load_category, train_cell, training_tables
    from comet_pipeline.training.trainer import CoMetConfig

    params = load_params()
    samples = builtin_samples(params)  # no contamination: the training set is clean
    features = feature_params(params)
    evaluation = parse(EvaluationParams, params["evaluation"], "evaluation")

    setups = model_setups(params)
    rows = []
    for category in sorted(samples["category"].unique()):
        data = load_category(samples, category, features)
        row = {"category": category, **naive_auroc(data.test)}
        for name, setup in setups.items():
            result = train_cell(data, setup, CoMetConfig(), seed=args.seed)
            _, _, scores = training_tables(category, result)
            metrics, _ = evaluate_cell(result.model, data, scores, evaluation)
            row |= {f"{name}_i_auroc": metrics["i_auroc"], f"{name}_p_auroc": metrics["p_auroc"], f"{name}_aupro": metrics["aupro"]}
        rows.append(row)
        print(row, flush=True)
    table = pd.DataFrame(rows)
    table = pd.concat([table, table.mean(numeric_only=True).to_frame().T.assign(category="mean")], ignore_index=True)
    print(markdown(table))
    write_report(
        REPORT_DIR / "clean_baselines.md",
        "Baselines on a clean training set vs naive pixel statistics",
        [("Test metrics (ratio 0, seed %d)" % args.seed, markdown(table))],
    )

if __name__ == "__main__":
    main()
