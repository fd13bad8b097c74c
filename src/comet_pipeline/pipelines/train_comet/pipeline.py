"""train_comet pipeline: cached features -> CoMet models (switches in parameters_train_comet.yml)."""

from kedro.pipeline import Pipeline, node, pipeline

from comet_pipeline.pipelines.training_nodes import train_models


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline(
        [
            node(
                train_models,
                ["manifest", "feature_index", "params:features", "params:train", "params:comet"],
                ["comet_models", "comet_history", "comet_weights", "comet_train_scores"],
                name="train_comet_models",
            )
        ]
    )
