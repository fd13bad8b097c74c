"""Feature-cache speed-up on a rerun, and peak memory of one training vs training-set size.

1. **cache rerun**: ``extract_features`` of the default built-in dataset (every image of
   the configured categories; ``--max-images`` limits it) into a *fresh* cache folder in a
   temporary directory (uncached), then again (all hits). Target: rerun ≥ 5× faster.
2. **memory**: one training (default model/optim settings, CoMet as configured) on the
   first category's contaminated training set with its feature rows duplicated 1×, 2×, 4×
   (unique ids per copy), each in a fresh subprocess; reported: the RSS just before
   training, the peak RSS during training (psutil, polled every 5 ms) and their
   difference (what training itself adds). ``ru_maxrss`` is not used: Linux keeps it
   across ``exec``, so a child started from a big parent reports the parent's peak. ``--epochs``
   shortens training (peak memory is reached in the first epochs; the default 3 covers
   CoMet's first re-weighting after ``warmup_epochs``).

Run: ``python -m benchmarks.cache_rerun [--max-images N] [--factors 1 2 4] [--epochs 3]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks._common import (
    REPORT_DIR,
    ROOT,
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


def cache_rerun(max_images: int | None = None) -> dict[str, float]:
    from comet_pipeline.experiment import features_for

    params = load_params()
    samples = builtin_samples(params)
    if max_images:
        samples = samples.iloc[:max_images]
    with tempfile.TemporaryDirectory() as tmp:
        fp = feature_params(params, cache_dir=Path(tmp) / "cache")
        start = time.perf_counter()
        first = features_for(samples, fp)
        uncached = time.perf_counter() - start
        start = time.perf_counter()
        second = features_for(samples, fp)
        cached = time.perf_counter() - start
        assert np.array_equal(first, second)
    return {
        "images": len(samples),
        "views": first.shape[1],
        "feature MB": first.nbytes / 2**20,
        "uncached s": uncached,
        "cached s": cached,
        "speed-up (target ≥ 5)": uncached / cached,
    }


class _RssSampler:
    """Peak current RSS (psutil, polled every ``interval`` s) while the ``with`` block runs.

    ``ru_maxrss`` alone is useless here: the process's high-water mark is usually set
    before training (imports, feature loading), so training never raises it.
    """

    def __init__(self, interval: float = 0.005) -> None:
        import psutil

        self._process = psutil.Process()
        self.interval = interval
        self.start_mb = self.peak_mb = 0.0
        self._stop = threading.Event()

    def _rss(self) -> float:
        return self._process.memory_info().rss / 2**20

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, self._rss())
            time.sleep(self.interval)

    def __enter__(self) -> "_RssSampler":
        gc.collect()
        self.start_mb = self.peak_mb = self._rss()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(self.peak_mb, self._rss())


def memory_child(factor: int, model: str, strategy: str, epochs: int) -> dict:
    """Runs in a fresh process: one training on ``factor`` copies of the first category's train set."""
    from comet_pipeline.experiment import CategoryData, load_category, train_cell
    from comet_pipeline.training.trainer import CoMetConfig

    quiet_logs()
    params = load_params()
    category = params["data"]["categories"][0]
    manifest = contaminated(builtin_samples(params, [category]), params)
    data = load_category(manifest, category, feature_params(params))
    train = pd.concat(
        [data.train.assign(sample_id=data.train["sample_id"] + f"#{k}") for k in range(factor)], ignore_index=True
    )
    feats = np.concatenate([data.train_features] * factor)
    data = CategoryData(category, train, data.test, feats, data.test_features)
    setup = model_setups(params)[model]
    setup = dataclasses.replace(setup, train=dataclasses.replace(setup.train, epochs=epochs))
    config = comet_config(params) if strategy == "comet" else CoMetConfig()
    start = time.perf_counter()
    with _RssSampler() as sampler:
        train_cell(data, setup, config)
    return {
        "images": len(train),
        "features MB": feats.nbytes / 2**20,
        "RSS before training MB": sampler.start_mb,
        "peak RSS in training MB": sampler.peak_mb,
        "train s": time.perf_counter() - start,
    }


def memory_scaling(factors: list[int], models: list[str], strategy: str, epochs: int) -> pd.DataFrame:
    rows = []
    for model in models:
        for factor in factors:
            print(f"[memory] {model} {strategy} ×{factor}...", flush=True)
            out = subprocess.run(
                [sys.executable, "-m", "benchmarks.cache_rerun", "--child", str(factor), model, strategy, str(epochs)],
                cwd=ROOT, capture_output=True, text=True, check=True,
            )
            result = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append({"model": model, "strategy": strategy, "copies": factor, **result,
                         "training peak − before MB": result["peak RSS in training MB"] - result["RSS before training MB"]})
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-images", type=int, default=None)
    parser.add_argument("--factors", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--models", nargs="+", default=None)
    parser.add_argument("--strategy", choices=("baseline", "comet"), default="comet")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--skip-cache", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--child", nargs=4, metavar=("FACTOR", "MODEL", "STRATEGY", "EPOCHS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        factor, model, strategy, epochs = args.child
        print(json.dumps(memory_child(int(factor), model, strategy, int(epochs))))
        return
    quiet_logs()
    sections = []
    if not args.skip_cache:
        print("[cache] extracting the default dataset into a fresh cache, then again...", flush=True)
        body = markdown(pd.DataFrame([cache_rerun(args.max_images)]), digits=2)
        print(body)
        sections.append(("Feature extraction: fresh cache vs rerun", body))
    if not args.skip_memory:
        models = args.models or list(model_setups(load_params()))
        body = markdown(memory_scaling(args.factors, models, args.strategy, args.epochs), digits=1)
        print(body)
        sections.append((f"Peak memory of one training ({args.epochs} epochs) vs training images", body))
    write_report(REPORT_DIR / "cache_rerun.md", "Feature cache and memory", sections)


if __name__ == "__main__":
    main()
