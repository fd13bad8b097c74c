"""export pipeline: trained models + train scores + evaluation -> data/06_models/bundles/<strategy>__<category>__<model>/."""

from kedro.pipeline import Pipeline, node, pipeline

from .nodes import bundle_models


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline(
        [
            node(
                bundle_models,
                [
                    "manifest",
                    "baseline_models",
                    "baseline_train_scores",
                    "comet_models",
                    "comet_train_scores",
                    "evaluation_results",
                    "params:features",
                    "params:train",
                    "params:comet",
                    "params:evaluation",
                    "params:contamination",
                ],
                "model_bundles",
                name="bundle_models",
            )
        ]
    )
