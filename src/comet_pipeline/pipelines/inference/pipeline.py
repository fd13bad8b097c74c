"""inference pipeline: bundle + image folder -> scores table (catalog) and overlay PNGs (``inference.output``)."""

from kedro.pipeline import Pipeline, node, pipeline

from .nodes import score_images


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline([node(score_images, "params:inference", "inference_scores", name="score_images")])
