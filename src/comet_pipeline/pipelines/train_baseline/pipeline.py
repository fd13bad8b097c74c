"""train_baseline pipeline: cached features -> baseline models."""

from kedro.pipeline import Pipeline, node, pipeline

from comet_pipeline.pipelines.training_nodes import train_models


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline(
        [
            node(
                train_models,
                ["manifest", "feature_index", "params:features", "params:train"],
                ["baseline_models", "baseline_history", "baseline_weights", "baseline_train_scores"],
                name="train_baseline_models",
            )
        ]
    )
