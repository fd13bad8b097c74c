"""Project pipelines: every folder under ``pipelines/`` registers itself by name."""

from __future__ import annotations

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

#: the full demo (``kedro run``); the noise sweep is long and runs on its own.
DEMO = ("data_ingestion", "feature_extraction", "train_baseline", "train_comet", "evaluation", "reporting")


def register_pipelines() -> dict[str, Pipeline]:
    """Map pipeline names to pipelines; ``__default__`` is the demo."""
    pipelines = find_pipelines(raise_errors=True)
    # Kedro only imports the pipelines a run asks for, so build the demo from those present.
    pipelines["__default__"] = sum((pipelines[name] for name in DEMO if name in pipelines), Pipeline([]))
    return pipelines
