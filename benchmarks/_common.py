"""Shared helpers of the benchmarks: project defaults from ``conf/base``, the built-in data, tables.

Every benchmark reads its defaults from ``conf/base/parameters_*.yml`` (never
hard-coded copies), so a changed default changes the benchmark too.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import logging
import os
import platform
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf" / "base"
REPORT_DIR = ROOT / "data" / "08_reporting" / "benchmarks"

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MPLBACKEND", "Agg")


def load_params() -> dict[str, Any]:
    """All parameter groups of ``conf/base/parameters_*.yml`` merged into one dict."""
    params: dict[str, Any] = {}
    for path in sorted(CONF.glob("parameters_*.yml")):
        params.update(yaml.safe_load(path.read_text()) or {})
    return params


def resolve(path: str | Path) -> Path:
    """A project-relative path from the config made absolute (benchmarks may run from anywhere)."""
    path = Path(path)
    return path if path.is_absolute() else ROOT / path


def feature_params(params: dict[str, Any], cache_dir: str | Path | None = None):
    """``FeatureParams`` of the config, the cache folder made absolute (or replaced)."""
    from comet_pipeline.config import FeatureParams, parse

    values = dict(params["features"])
    values["cache_dir"] = str(resolve(cache_dir if cache_dir is not None else values["cache_dir"]))
    return parse(FeatureParams, values, "features")


def comet_config(params: dict[str, Any], **overrides: Any):
    """``CoMetConfig`` from the ``comet`` parameter group (plus overrides)."""
    from comet_pipeline.config import parse
    from comet_pipeline.training.trainer import CoMetConfig

    return dataclasses.replace(parse(CoMetConfig, params["comet"], "comet"), **overrides)


def model_setups(params: dict[str, Any]):
    """``{name: ModelSetup}`` of the ``train`` parameter group."""
    from comet_pipeline.experiment import parse_model_setups

    return {setup.name: setup for setup in parse_model_setups(params["train"])}


def builtin_samples(params: dict[str, Any], categories: Sequence[str] | None = None) -> pd.DataFrame:
    """Generate the built-in data at ``data.root`` (idempotent) and read its sample table."""
    from comet_pipeline.config import BuiltinDataParams, DataParams, parse
    from comet_pipeline.data.readers import read_dataset
    from comet_pipeline.data.synthetic import generate_dataset

    data = parse(DataParams, params["data"], "data")
    root = resolve(data.root)
    if data.source == "builtin":
        builtin = parse(BuiltinDataParams, data.builtin, "data.builtin")
        generate_dataset(root, categories=data.categories, **dataclasses.asdict(builtin))
    cats = list(categories) if categories else list(data.categories)
    samples, _ = read_dataset(root, cats, layout=data.layout, on_error=data.on_error)
    return samples


def contaminated(samples: pd.DataFrame, params: dict[str, Any], seed: int | None = None) -> pd.DataFrame:
    """The sample table contaminated as configured (``contamination``), with ``seed`` overriding its seed."""
    from comet_pipeline.config import ContaminationParams, parse
    from comet_pipeline.data.contamination import contaminate

    c = parse(ContaminationParams, params["contamination"], "contamination")
    manifest, _ = contaminate(samples, ratio=c.ratio, seed=c.seed if seed is None else seed, overlap=c.overlap)
    return manifest


def quiet_logs(level: int = logging.WARNING) -> None:
    """Silence the per-epoch INFO logs of the trainer (benchmarks print their own progress)."""
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    for name in ("comet_pipeline", "kedro"):
        logging.getLogger(name).setLevel(level)


def best_of(fn: Callable[[], Any], repeats: int) -> tuple[float, list[float], Any]:
    """``(best seconds, all seconds, last result)`` of ``repeats`` calls of ``fn``."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), times, result


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> str:
    """One line: CPU, cores, torch threads, GPU, date."""
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (
        f"{cpu_model()}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"{gpu}, {_dt.datetime.now().strftime('%Y-%m-%d %H:%M')}"
    )


def fmt(value: Any, digits: int = 3) -> str:
    if isinstance(value, float):
        if value != value:  # nan
            return "–"
        return f"{value:.{digits}f}"
    return str(value)


def markdown(frame: pd.DataFrame, digits: int = 3) -> str:
    """A DataFrame as a GitHub Markdown table (floats rounded to ``digits``)."""
    columns = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(columns) + " |", "| " + " | ".join("---" for _ in columns) + " |"]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(fmt(v, digits) for v in row) + " |")
    return "\n".join(lines)


def write_report(path: Path, title: str, sections: Iterable[tuple[str, str]]) -> None:
    """A Markdown file: title, machine line, then ``(heading, body)`` sections."""
    path.parent.mkdir(parents=True, exist_ok=True)
    parts = [f"# {title}", "", f"Machine: {machine()}", ""]
    for heading, body in sections:
        parts += [f"## {heading}", "", body, ""]
    path.write_text("\n".join(parts))
