"""data_ingestion pipeline: images -> sample table -> contaminated manifest."""

from kedro.pipeline import Pipeline, node, pipeline

from .nodes import contaminate_train, ingest


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline(
        [
            node(ingest, "params:data", ["samples", "ingestion_report"], name="ingest"),
            node(
                contaminate_train,
                ["samples", "params:contamination"],
                ["manifest", "contamination_summary"],
                name="contaminate",
            ),
        ]
    )
