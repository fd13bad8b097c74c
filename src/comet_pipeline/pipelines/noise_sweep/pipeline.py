"""noise_sweep pipeline: samples -> grid of (ratio, seed, category, model, strategy) runs -> plot and tables."""

from kedro.pipeline import Pipeline, node, pipeline

from .nodes import sweep, sweep_outputs


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline(
        [
            node(
                sweep,
                [
                    "samples",
                    "params:noise_sweep",
                    "params:train",
                    "params:comet",
                    "params:features",
                    "params:evaluation",
                    "params:contamination",
                ],
                "sweep_results",
                name="run_noise_sweep",
            ),
            node(sweep_outputs, "sweep_results", ["sweep_plot", "sweep_summary", "sweep_markdown"], name="sweep_report"),
        ]
    )
