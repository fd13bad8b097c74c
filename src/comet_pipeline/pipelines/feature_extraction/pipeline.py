"""feature_extraction pipeline: manifest -> cached features (+ index)."""

from kedro.pipeline import Pipeline, node, pipeline

from .nodes import extract


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline([node(extract, ["manifest", "params:features"], "feature_index", name="extract_features")])
