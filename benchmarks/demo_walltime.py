"""Wall time of the demo (`make run` equivalent: ``.venv/bin/kedro run`` in the project root).

Runs the default pipeline once with ``KEDRO_DISABLE_TELEMETRY=true`` and reports the
wall time, whether the built-in data and the feature cache already existed before
(``make run`` on a fresh checkout pays generation and extraction; a rerun does not),
and how many trainings the run does (categories × models × {baseline, CoMet}).
Note: it writes the demo's outputs under ``data/`` exactly as ``make run`` does.

Run: ``python -m benchmarks.demo_walltime [--timeout 3600]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time
from pathlib import Path

import pandas as pd

from benchmarks._common import REPORT_DIR, ROOT, feature_params, load_params, markdown, resolve, write_report


def state(params: dict) -> dict[str, object]:
    """What exists before the run: generated data, number of cached feature files."""
    data_ready = (resolve(params["data"]["root"]) / "generator.json").exists()
    cache = Path(feature_params(params).cache_dir)
    cached = sum(1 for _ in cache.glob("*/*.npy")) if cache.exists() else 0
    return {"data generated before": data_ready, "cached feature files before": cached}


def run(timeout: float) -> dict[str, object]:
    params = load_params()
    n_trainings = len(params["data"]["categories"]) * len(params["train"]["models"]) * 2
    before = state(params)
    env = {
        **os.environ,
        "KEDRO_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "1",
        "MPLBACKEND": "Agg",
        "KEDRO_LOGGING_CONFIG": str(ROOT / "conf" / "logging.yml"),
    }
    kedro = ROOT / ".venv" / "bin" / "kedro"
    start = time.perf_counter()
    proc = subprocess.run([str(kedro), "run"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    seconds = time.perf_counter() - start
    (REPORT_DIR / "demo_walltime.log").parent.mkdir(parents=True, exist_ok=True)
    (REPORT_DIR / "demo_walltime.log").write_text(proc.stdout + proc.stderr)
    return {
        "command": "kedro run",
        "exit code": proc.returncode,
        "wall s": seconds,
        "wall min": seconds / 60,
        "trainings": n_trainings,
        **before,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=3600)
    args = parser.parse_args(argv)
    print("[demo] kedro run (this trains every configured model twice per category)...", flush=True)
    body = markdown(pd.DataFrame([run(args.timeout)]), digits=1)
    print(body)
    write_report(REPORT_DIR / "demo_walltime.md", "Demo wall time", [("kedro run", body)])


if __name__ == "__main__":
    main()
