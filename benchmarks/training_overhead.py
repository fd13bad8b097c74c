"""CoMet's training-time overhead over the baseline (targets: whole training ≤ 2×, per step ≤ 1.5×).

On one category of the built-in data (contaminated as configured), for both
models and the default optimisation settings of ``parameters_train_baseline.yml``:

1. **whole training**: ``experiment.train_cell`` with the baseline (``CoMetConfig()``),
   CoMet (``parameters_train_comet.yml``, first-order meta) and CoMet with
   ``meta_order: second`` — best of ``--repeats`` runs each, runs interleaved so that
   load from other processes hits every variant alike; ``--epochs`` shortens training
   (the ratio is what matters; CoMet's first re-weighting is at ``warmup_epochs``);
2. **per step**: from the same runs, the trainer's own per-epoch ``seconds`` (history)
   divided by its steps per epoch (``ceil(#training images / batch_size)``): median over
   epochs, best of the ``--repeats`` runs. Timing the real trainer (not a re-implemented
   step) keeps the figure honest as the trainer changes; it includes the per-epoch
   work (validation loss, CoMet's re-weighting) spread over the steps.

``--profile`` adds a cProfile of one short CoMet flow training (top entries by cumulative time).

Run: ``python -m benchmarks.training_overhead [--epochs N] [--repeats 2] [--profile]``.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import io
import math
import pstats
import statistics
import time
from typing import Any

import pandas as pd
import torch

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

TARGET_WHOLE = 2.0
TARGET_STEP = 1.5


def variants(params: dict) -> dict[str, Any]:
    from comet_pipeline.training.trainer import CoMetConfig

    return {
        "baseline": CoMetConfig(),
        "comet (first-order)": comet_config(params),
        "comet (second-order)": comet_config(params, meta_order="second"),
    }


def timed_training(data, setup, configs: dict[str, Any], repeats: int) -> tuple[dict[str, float], dict[str, float]]:
    """Best-of-``repeats`` whole-training seconds and per-step seconds per variant (runs interleaved)."""
    from comet_pipeline.experiment import train_cell

    whole = {name: float("inf") for name in configs}
    step = dict(whole)
    for _ in range(repeats):
        for name, config in configs.items():
            start = time.perf_counter()
            result = train_cell(data, setup, config)
            whole[name] = min(whole[name], time.perf_counter() - start)
            steps_per_epoch = math.ceil(len(result.train_ids) / setup.train.batch_size)
            step[name] = min(step[name], statistics.median(result.history["seconds"]) / steps_per_epoch)
    return whole, step


def profile_comet(data, setup, config, epochs: int, top: int = 18) -> str:
    from comet_pipeline.experiment import train_cell

    setup = dataclasses.replace(setup, train=dataclasses.replace(setup.train, epochs=epochs))
    profiler = cProfile.Profile()
    profiler.enable()
    train_cell(data, setup, config)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(top)
    return out.getvalue()


def run(
    epochs: int | None = None,
    repeats: int = 2,
    category: str | None = None,
    models: list[str] | None = None,
    profile: bool = False,
) -> tuple[pd.DataFrame, str]:
    from comet_pipeline.experiment import load_category

    params = load_params()
    category = category or params["data"]["categories"][0]
    manifest = contaminated(builtin_samples(params, [category]), params)
    data = load_category(manifest, category, feature_params(params))
    setups = model_setups(params)
    configs = variants(params)
    rows = []
    for name in models or list(setups):
        setup = setups[name]
        if epochs:
            setup = dataclasses.replace(setup, train=dataclasses.replace(setup.train, epochs=epochs))
        print(f"[overhead] {name}: training ({setup.train.epochs} epochs, best of {repeats})...", flush=True)
        whole, step = timed_training(data, setup, configs, repeats)
        for variant in configs:
            rows.append(
                {
                    "model": name,
                    "variant": variant,
                    "epochs": setup.train.epochs,
                    "train s": whole[variant],
                    "× baseline (target ≤ 2)": whole[variant] / whole["baseline"],
                    "step ms": 1e3 * step[variant],
                    "step × baseline (target ≤ 1.5)": step[variant] / step["baseline"],
                }
            )
    table = pd.DataFrame(rows)
    profile_text = ""
    if profile:
        print("[overhead] profiling a CoMet flow training...", flush=True)
        setup = setups["flow"] if "flow" in setups else next(iter(setups.values()))
        profile_text = profile_comet(data, setup, configs["comet (first-order)"], epochs=min(epochs or 4, 4))
    return table, profile_text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=None, help="override the configured epochs (default: as configured)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--category", default=None, help="default: the first configured category")
    parser.add_argument("--models", nargs="+", default=None)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    quiet_logs()
    if args.threads:
        torch.set_num_threads(args.threads)
    table, profile_text = run(args.epochs, args.repeats, args.category, args.models, args.profile)
    body = markdown(table, digits=2)
    print(body)
    sections = [("CoMet vs baseline training time", body)]
    if profile_text:
        print(profile_text)
        sections.append(("cProfile: CoMet flow training (cumulative)", f"```\n{profile_text}\n```"))
    write_report(REPORT_DIR / "training_overhead.md", "Training overhead", sections)


if __name__ == "__main__":
    main()
