"""reporting pipeline: evaluation outputs -> tables, figures, report.html, metrics.json."""

from kedro.pipeline import Pipeline, node, pipeline

from .nodes import report_figures, summarise, write_html


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline(
        [
            node(summarise, "evaluation_results", ["summary_table", "summary_markdown", "metrics"], name="summarise"),
            node(
                report_figures,
                [
                    "manifest",
                    "comet_models",
                    "comet_train_scores",
                    "baseline_history",
                    "comet_history",
                    "params:features",
                    "params:evaluation",
                ],
                ["report_figures", "report_pngs"],
                name="report_figures",
            ),
            node(
                write_html,
                ["summary_markdown", "contamination_summary", "ingestion_report", "report_pngs"],
                "report_html",
                name="write_html_report",
            ),
        ]
    )
