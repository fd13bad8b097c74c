"""CoMet's training-time overhead over the baseline (targets: whole training ≤ 2×, per step ≤ 1.5×).

On one category of the built-in data (contaminated as configured), for both
models and the default optimisation settings of ``parameters_train_baseline.yml``:

1. **whole training**: ``experiment.train_cell`` with the baseline (``CoMetConfig()``),
   CoMet (``parameters_train_comet.yml``, first-order meta) and CoMet with
   ``meta_order: second`` — best of ``--repeats`` runs each, runs interleaved so that
   load from other processes hits every variant alike; ``--epochs`` shortens training
   (the ratio is what matters; CoMet's first re-weighting is at ``warmup_epochs``);
2. **per step**: one optimisation step on a real batch of ``batch_size`` training images,
   exactly as the trainer does it — baseline ``scl_loss`` + backward + ``optimizer.step``;
   CoMet ``λ(Σ)`` + ``meta_gradients`` (support/query halves) + the validation
   mini-batch forward that feeds ``Σ`` + ``optimizer.step``. Median of ``--steps`` steps,
   best of ``--repeats`` rounds.

``--profile`` adds a cProfile of one short CoMet flow training (top entries by cumulative time).

Run: ``python -m benchmarks.training_overhead [--epochs N] [--repeats 2] [--profile]``.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import io
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


def whole_training(data, setup, configs: dict[str, Any], repeats: int) -> dict[str, float]:
    from comet_pipeline.experiment import train_cell

    best = {name: float("inf") for name in configs}
    for _ in range(repeats):
        for name, config in configs.items():
            start = time.perf_counter()
            train_cell(data, setup, config)
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def _step_fns(model, feats: torch.Tensor, setup, config, val_feats: torch.Tensor):
    """A closure doing one trainer step with ``config`` on fixed batches (mirrors ``trainer.train``)."""
    from comet_pipeline.comet.meta import meta_gradients, scl_loss
    from comet_pipeline.comet.model_uncertainty import LossWindow, adaptive_lambda

    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    opt_cls = torch.optim.Adam if setup.train.optimizer == "adam" else torch.optim.SGD
    optimizer = opt_cls(list(params.values()), lr=setup.train.lr, weight_decay=setup.train.weight_decay)
    window = LossWindow(config.window)
    weights = torch.ones(len(feats))
    half = len(feats) // 2

    def step() -> None:
        model.train()
        lam = adaptive_lambda(window.determinant(), config.lambda0, config.gamma) if config.covariance_regularization else 0.0
        if config.meta_learning:
            result = meta_gradients(
                model, feats[:half], weights[:half], feats[half:], weights[half:],
                alpha=config.inner_lr, inner_steps=config.inner_steps, l2_coef=lam, order=config.meta_order,
            )
            per_sample = result.support_losses
        else:
            loss, per_sample = scl_loss(model, feats, weights, lam)
        train_loss = float(per_sample.detach().mean())
        if config.covariance_regularization:
            model.eval()
            with torch.no_grad():
                window.append(train_loss, float(model(val_feats).mean()))
            model.train()
        optimizer.zero_grad(set_to_none=True)
        if config.meta_learning:
            for name, p in params.items():
                p.grad = result.grads[name]
        else:
            loss.backward()
        optimizer.step()

    return step


def per_step(data, setup, configs: dict[str, Any], steps: int, repeats: int) -> dict[str, float]:
    """Median seconds of one step per variant (best of ``repeats`` interleaved rounds)."""
    from comet_pipeline.experiment import model_views
    from comet_pipeline.models import build_model

    bs = setup.train.batch_size
    fns = {}
    for name, config in configs.items():
        torch.manual_seed(0)
        model = build_model(setup.name, in_channels=data.train_features.shape[2], **setup.kwargs)
        feats = torch.as_tensor(model_views(model, data.train_features)).float()
        fns[name] = _step_fns(model, feats[:bs], setup, config, feats[bs: 2 * bs])
        for _ in range(3):  # warm-up (allocations, window filling)
            fns[name]()
    best = {name: float("inf") for name in configs}
    for _ in range(repeats):
        for name, fn in fns.items():
            times = []
            for _ in range(steps):
                start = time.perf_counter()
                fn()
                times.append(time.perf_counter() - start)
            best[name] = min(best[name], statistics.median(times))
    return best


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
    steps: int = 10,
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
        print(f"[overhead] {name}: whole training ({setup.train.epochs} epochs, best of {repeats})...", flush=True)
        whole = whole_training(data, setup, configs, repeats)
        print(f"[overhead] {name}: per step (median of {steps}, best of {repeats + 1})...", flush=True)
        step = per_step(data, setup, configs, steps, repeats + 1)
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
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--category", default=None, help="default: the first configured category")
    parser.add_argument("--models", nargs="+", default=None)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    quiet_logs()
    if args.threads:
        torch.set_num_threads(args.threads)
    table, profile_text = run(args.epochs, args.repeats, args.steps, args.category, args.models, args.profile)
    body = markdown(table, digits=2)
    print(body)
    sections = [("CoMet vs baseline training time", body)]
    if profile_text:
        print(profile_text)
        sections.append(("cProfile: CoMet flow training (cumulative)", f"```\n{profile_text}\n```"))
    write_report(REPORT_DIR / "training_overhead.md", "Training overhead", sections)


if __name__ == "__main__":
    main()
