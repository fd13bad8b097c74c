"""Run the benchmarks (extraction, training overhead, cache rerun + memory, demo wall time).

Writes one summary table (metric, value, target) plus each benchmark's detail
table to ``data/08_reporting/benchmarks.md``. The long baseline-vs-CoMet
experiment is separate: ``python -m benchmarks.comet_vs_baseline`` writes
``data/08_reporting/benchmarks/comet_vs_baseline.md``; this summary quotes its
mean I-AUROC and curation AUROC when that file's cell results exist.

Run: ``make bench`` or ``python -m benchmarks.run_all [--quick] [--skip-demo]``.
``--quick`` shortens the overhead trainings (4 epochs, one repeat) and bench_extraction (16 images);
the cache rerun always extracts the whole default dataset.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time

import pandas as pd

from benchmarks._common import REPORT_DIR, ROOT, machine, markdown, quiet_logs

SUMMARY = ROOT / "data" / "08_reporting" / "benchmarks.md"


def extraction(images: int) -> tuple[list[dict], str]:
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_extraction.py"), "--images", str(images)],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout
    rows = []
    ratio = re.search(r"ratio extract / raw\s*:\s*([\d.]+)x", out)
    if ratio:
        rows.append({"benchmark": "extraction", "metric": "extract_features / raw backbone throughput",
                     "value": float(ratio.group(1)), "target": "≥ 0.9"})
    cold = re.search(r"first call \(cold\).*?([\d.]+)x raw", out)
    if cold:
        rows.append({"benchmark": "extraction", "metric": "first call incl. backbone build / raw",
                     "value": float(cold.group(1)), "target": "(reported)"})
    return rows, f"```\n{out.strip()}\n```"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--skip-demo", action="store_true", help="skip the (long) kedro run wall time")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads in this process")
    parser.add_argument("--profile", action="store_true", help="add a cProfile of a short CoMet flow training")
    args = parser.parse_args(argv)
    quiet_logs()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    from benchmarks import cache_rerun, comet_vs_baseline, demo_walltime, training_overhead

    rows: list[dict] = []
    details: list[tuple[str, str]] = []
    start = time.perf_counter()

    print("[run_all] extraction throughput...", flush=True)
    ext_rows, ext_body = extraction(16 if args.quick else 128)
    rows += ext_rows
    details.append(("Extraction throughput (bench_extraction.py)", ext_body))

    print("[run_all] training overhead...", flush=True)
    table, profile = training_overhead.run(
        epochs=4 if args.quick else None, repeats=1 if args.quick else 2, profile=args.profile
    )
    for r in table[table["variant"] != "baseline"].itertuples(index=False):
        rows.append({"benchmark": "training overhead", "metric": f"{r.model} {r.variant}: whole training × baseline "
                     f"({r.epochs} epochs)", "value": r[4], "target": "≤ 2"})
        rows.append({"benchmark": "training overhead", "metric": f"{r.model} {r.variant}: step × baseline",
                     "value": r[6], "target": "≤ 1.5"})
    details.append(("Training overhead", markdown(table, digits=2)))
    if profile:
        details.append(("cProfile: short CoMet flow training (cumulative)", f"```\n{profile.strip()}\n```"))

    print("[run_all] cache rerun...", flush=True)
    cache = cache_rerun.cache_rerun(None)  # always the whole default dataset
    rows.append({"benchmark": "feature cache", "metric": f"rerun speed-up ({cache['images']} images)",
                 "value": cache["speed-up (target ≥ 5)"], "target": "≥ 5"})
    details.append(("Feature cache rerun", markdown(pd.DataFrame([cache]), digits=2)))
    print("[run_all] memory scaling...", flush=True)
    memory = cache_rerun.memory_scaling([1, 2, 4], ["flow", "simplenet"], "comet", 3)
    for model, sub in memory.groupby("model"):
        growth = sub["training peak − before MB"].iloc[-1] / max(sub["training peak − before MB"].iloc[0], 1e-9)
        rows.append({"benchmark": "memory", "metric": f"{model}: training memory (peak − before) at 4n / at n",
                     "value": growth, "target": "≈ linear (≤ 4)"})
    details.append(("Peak memory vs training images (CoMet, 3 epochs)", markdown(memory, digits=1)))

    if not args.skip_demo:
        print("[run_all] demo wall time (kedro run)...", flush=True)
        demo = demo_walltime.run(timeout=3600)
        rows.append({"benchmark": "demo", "metric": f"kedro run wall time, {demo['trainings']} trainings (min)",
                     "value": demo["wall min"], "target": "–"})
        details.append(("Demo wall time", markdown(pd.DataFrame([demo]), digits=1)))

    cells = comet_vs_baseline.read_cells()
    main_cells = cells[cells["strategy"].isin(["baseline", "comet"])] if not cells.empty else cells
    if not main_cells.empty:
        means = main_cells.groupby(["model", "strategy"])["i_auroc"].mean()
        for (model, strategy), value in means.items():
            rows.append({"benchmark": "comet_vs_baseline", "metric": f"{model} {strategy} mean I-AUROC "
                         f"({main_cells['seed'].nunique()} seeds)", "value": value, "target": "CoMet ≥ baseline"})
        cur = main_cells[main_cells["strategy"] == "comet"].groupby("model")["curation_auroc"].mean()
        for model, value in cur.items():
            rows.append({"benchmark": "comet_vs_baseline", "metric": f"{model} CoMet curation AUROC",
                         "value": value, "target": "≥ 0.9"})

    body = [
        "# Benchmarks",
        "",
        f"Machine: {machine()}. Total {(time.perf_counter() - start) / 60:.1f} min. "
        "Timings are best-of-n on a shared machine and noisy.",
        "",
        markdown(pd.DataFrame(rows), digits=3),
        "",
        "The baseline-vs-CoMet experiment runs separately (long): `python -m benchmarks.comet_vs_baseline`; "
        "its tables are in `data/08_reporting/benchmarks/comet_vs_baseline.md` (rows above quote it when present).",
        "",
    ]
    for heading, text in details:
        body += [f"## {heading}", "", text, ""]
    SUMMARY.parent.mkdir(parents=True, exist_ok=True)
    SUMMARY.write_text("\n".join(body))
    print("\n".join(body))
    print(f"written: {SUMMARY}", file=sys.stderr)


if __name__ == "__main__":
    main()
