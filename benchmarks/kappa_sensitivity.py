"""Sensitivity of CoMet's curation to the fence factor κ (training data only).

For κ in {0, 0.5, 1.5}, trains the flow with confidence weighting alone on the
built-in data at the configured contamination (seed 0) and reports, over the
*training* images, the AUROC of ``1 − w`` and of the raw training scores for the
injected images, and how many weights fall below 1. No test metric is involved,
and the project default (κ = 1.5, the authors' value) is not chosen from this.

    python -m benchmarks.kappa_sensitivity [--model flow] [--seed 0]
"""

from __future__ import annotations

import argparse

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

KAPPAS = (0.0, 0.5, 1.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="flow")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    quiet_logs()
    from comet_pipeline.evaluation.metrics import curation_auroc, image_auroc
    from comet_pipeline.experiment import load_category, train_cell, training_tables

    params = load_params()
    manifest = contaminated(builtin_samples(params), params, seed=args.seed)
    features, setup = feature_params(params), model_setups(params)[args.model]
    rows = []
    for category in sorted(manifest["category"].unique()):
        data = load_category(manifest, category, features)
        for kappa in KAPPAS:
            config = comet_config(
                params, confidence_weighting=True, covariance_regularization=False, meta_learning=False, kappa=kappa
            )
            _, _, scores = training_tables(category, train_cell(data, setup, config, seed=args.seed))
            injected = data.train.set_index("sample_id")["injected"].reindex(scores["sample_id"]).to_numpy(bool)
            rows.append(
                {
                    "category": category,
                    "kappa": kappa,
                    "curation_auroc_1_minus_w": curation_auroc(injected, scores["weight"].to_numpy()),
                    "auroc_raw_train_scores": image_auroc(injected, scores["score"].to_numpy()),
                    "weights_below_1": int((scores["weight"] < 1).sum()),
                    "images": len(scores),
                }
            )
            print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    mean = table.groupby("kappa", as_index=False).mean(numeric_only=True).assign(category="mean")
    table = pd.concat([table, mean[table.columns]], ignore_index=True)
    print(markdown(table))
    write_report(
        REPORT_DIR / "kappa_sensitivity.md",
        f"κ sensitivity of the curation ({args.model}, confidence weighting only, seed {args.seed})",
        [("Training images: injected vs clean", markdown(table))],
    )


if __name__ == "__main__":
    main()
