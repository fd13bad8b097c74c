"""evaluation pipeline: models + test features -> metrics tables."""

from kedro.pipeline import Pipeline, node, pipeline

from .nodes import evaluate_models


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline(
        [
            node(
                evaluate_models,
                [
                    "manifest",
                    "baseline_models",
                    "baseline_train_scores",
                    "comet_models",
                    "comet_train_scores",
                    "params:features",
                    "params:train",
                    "params:evaluation",
                    "params:contamination",
                ],
                ["evaluation_results", "test_scores"],
                name="evaluate_models",
            )
        ]
    )
