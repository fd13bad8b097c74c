"""``comet-pipeline``: score images with a model bundle, export a bundle, or train one cell.

    comet-pipeline score <file-or-folder> --model <bundle dir> [--output DIR] [--overwrite]
                         [--batch-size N] [--device auto|cpu|cuda]
    comet-pipeline export --model <bundle dir> --format torchscript|onnx --output FILE [--overwrite]
    comet-pipeline train --category C --model flow|simplenet --strategy baseline|comet --output DIR
                         [--seed N] [--env ENV] [--params "key=value,..."] [--overwrite]

``train`` runs from the project root on the cached features of the pipelines'
manifest; launched by ``torchrun`` it trains data-parallel on every process
(``torchrun --standalone --nproc_per_node 2 -m comet_pipeline.command_line train ...``).

Exit codes: 0 success; 1 error (missing/corrupt bundle, outputs exist, no images, ...);
2 bad command line; 3 scored, but some images were unreadable (listed on stderr and in
``scores.csv``).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from comet_pipeline.bundle import BundleError, load_bundle
from comet_pipeline.inference import SCORES_FILE, InferenceParams, score_source

logger = logging.getLogger(__name__)

EXIT_ERROR, EXIT_UNREADABLE = 1, 3


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="comet-pipeline", description="Score images with a model bundle, export a bundle, or train one cell."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    commands = parser.add_subparsers(dest="command", required=True)

    score = commands.add_parser("score", help="score an image file or a folder of images (recursive)")
    score.add_argument("images", type=Path, help="an image file or a folder of images")
    score.add_argument("--model", required=True, type=Path, help="bundle directory (model.pt, bundle.json)")
    score.add_argument("--output", type=Path, default=Path("comet-scores"), help="output folder (default: comet-scores)")
    score.add_argument("--overwrite", action="store_true", help="replace scores.csv and maps/ in the output folder")
    score.add_argument("--batch-size", type=int, default=16, help="images per batch (default: 16)")
    score.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:<index> (default: auto)")

    export = commands.add_parser("export", help="export backbone + detector as one TorchScript or ONNX graph")
    export.add_argument("--model", required=True, type=Path, help="bundle directory")
    export.add_argument("--format", required=True, choices=("torchscript", "onnx"))
    export.add_argument("--output", required=True, type=Path, help="file to write")
    export.add_argument("--overwrite", action="store_true", help="replace an existing output file")

    train = commands.add_parser(
        "train",
        help="train one (category, model, strategy) cell from the project's config and cached features; "
        "under torchrun data-parallel over all processes",
    )
    train.add_argument("--category", required=True, help="a category of the manifest (data_ingestion's output)")
    train.add_argument("--model", required=True, choices=("flow", "simplenet"), help="detector of the train parameters")
    train.add_argument("--strategy", required=True, choices=("baseline", "comet"), help="comet: with the comet parameters")
    train.add_argument("--seed", type=_non_negative_int, default=None, help="training seed (default: the model's optim.seed)")
    train.add_argument("--output", required=True, type=Path, help="folder for model.pt, history.csv, weights.csv, scores.csv")
    train.add_argument("--env", default=None, help="Kedro configuration environment layered over conf/base (default: local)")
    train.add_argument(
        "--params", default="", help='parameter overrides as for kedro run, e.g. "comet.kappa=1.0,train.flow.optim.epochs=5"'
    )
    train.add_argument("--conf", type=Path, default=Path("conf"), help="configuration folder (default: conf)")
    train.add_argument("--overwrite", action="store_true", help="replace the output files of an earlier run")
    return parser


def _score(args: argparse.Namespace) -> int:
    params = InferenceParams(str(args.model), str(args.images), str(args.output), args.batch_size, args.device)
    bundle, table = score_source(params, overwrite=args.overwrite, progress=args.images.is_dir())
    table.to_csv(args.output / SCORES_FILE, index=False)
    failed = table[table["decision"] == "error"]
    n_anomalous = int((table["decision"] == "anomalous").sum())
    print(
        f"scored {len(table) - len(failed)} of {len(table)} images with {args.model}: {n_anomalous} anomalous at "
        f"threshold {bundle.meta.calibration.threshold:.6g}; wrote {args.output / SCORES_FILE} and maps/"
    )
    if len(failed):
        print(f"{len(failed)} unreadable image(s), not scored:", file=sys.stderr)
        for row in failed.itertuples():
            print(f"  {row.path}: {row.error}", file=sys.stderr)
        return EXIT_UNREADABLE
    return 0


def _export(args: argparse.Namespace) -> int:
    from comet_pipeline.export import export

    if args.output.exists() and not args.overwrite:
        raise FileExistsError(f"{str(args.output)!r} exists; pass --overwrite to replace it")
    export(load_bundle(args.model), args.output, args.format)
    print(f"wrote {args.format} export of {args.model} to {args.output} (parity with PyTorch checked)")
    return 0


TRAIN_OUTPUTS: tuple[str, ...] = ("model.pt", "history.csv", "weights.csv", "scores.csv")


def _runtime_params(text: str) -> dict:
    """``"a.b=1,c=[x]"`` -> nested dict, the syntax of ``kedro run --params``."""
    import yaml
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    items = [item.strip() for item in text.split(",") if item.strip()]
    bad = [item for item in items if "=" not in item or not item.split("=", 1)[0].strip()]
    if bad:
        raise ValueError(f"--params: expected key=value items separated by commas, got {', '.join(map(repr, bad))}")
    try:
        return OmegaConf.to_container(OmegaConf.from_dotlist(items))
    except (OmegaConfBaseException, yaml.YAMLError) as err:
        raise ValueError(f"--params {text!r}: {err}") from err


def _train(args: argparse.Namespace) -> int:
    """Train one cell; under torchrun every process runs this and rank 0 writes the outputs."""
    import dataclasses

    import pandas as pd
    from kedro.config import MissingConfigException, OmegaConfigLoader

    from comet_pipeline.config import FeatureParams, parse
    from comet_pipeline.devices import resolve_device
    from comet_pipeline.experiment import load_category, parse_model_setups, train_cell, training_tables
    from comet_pipeline.models import save_model
    from comet_pipeline.settings import CONFIG_LOADER_ARGS
    from comet_pipeline.training import distributed
    from comet_pipeline.training.trainer import CoMetConfig

    existing = [name for name in TRAIN_OUTPUTS if (args.output / name).exists()]
    if existing and not args.overwrite:
        raise FileExistsError(f"{args.output} already holds {', '.join(existing)}; pass --overwrite to replace them")
    if not args.conf.is_dir():
        raise FileNotFoundError(f"configuration folder {str(args.conf)!r} not found; run from the project root or pass --conf")
    try:
        overrides = _runtime_params(args.params)
        loader = OmegaConfigLoader(str(args.conf), env=args.env, runtime_params=overrides, **CONFIG_LOADER_ARGS)
        params, catalog = loader["parameters"], loader["catalog"]
    except MissingConfigException as err:
        raise FileNotFoundError(f"configuration: {err}") from err
    setups = {setup.name: setup for setup in parse_model_setups(params.get("train"))}
    if args.model not in setups:
        raise ValueError(f"--model {args.model}: not in train.models of the configuration ({sorted(setups)})")
    setup = setups[args.model]
    if params.get("train", {}).get("checkpoints"):  # resumable, as in the training pipelines
        checkpoint_dir = str(args.output / "checkpoint")
        setup = dataclasses.replace(setup, train=dataclasses.replace(setup.train, checkpoint_dir=checkpoint_dir))
    comet = parse(CoMetConfig, params.get("comet"), "comet") if args.strategy == "comet" else CoMetConfig()
    features = parse(FeatureParams, params.get("features"), "features")
    manifest_path = Path(catalog.get("manifest", {}).get("filepath", "data/03_primary/manifest.parquet"))
    if not manifest_path.is_file():
        raise FileNotFoundError(
            f"manifest {str(manifest_path)!r} not found; run `kedro run --pipelines data_ingestion,feature_extraction` first"
        )
    manifest = pd.read_parquet(manifest_path)
    categories = sorted(manifest["category"].unique())
    if args.category not in categories:
        raise ValueError(f"--category {args.category!r}: not in the manifest; expected one of {categories}")

    backend = "nccl" if resolve_device(setup.train.device).type == "cuda" else "gloo"
    ctx = distributed.init_from_environment(backend)
    try:
        distributed.quiet_other_ranks(ctx)
        if not ctx.is_main:
            ctx.barrier()  # rank 0 extracts any features missing from the cache first
        data = load_category(manifest, args.category, features)
        if ctx.is_main:
            ctx.barrier()
        result = train_cell(data, setup, comet, seed=args.seed, progress=ctx.is_main)
        if ctx.is_main:
            args.output.mkdir(parents=True, exist_ok=True)
            save_model(result.model, args.output / "model.pt")
            tables = training_tables(f"{args.category}__{args.model}", result)
            for name, table in zip(TRAIN_OUTPUTS[1:], tables):
                table.to_csv(args.output / name, index=False)
            print(
                f"trained {args.model} on {args.category} ({args.strategy}, {ctx.world_size} process(es)): "
                f"wrote {', '.join(TRAIN_OUTPUTS)} to {args.output}"
            )
    finally:
        distributed.shutdown()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``comet-pipeline`` console script; returns the exit code."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    commands = {"score": _score, "export": _export, "train": _train}
    try:
        return commands[args.command](args)
    except (BundleError, FileNotFoundError, FileExistsError, ValueError, RuntimeError, FloatingPointError) as err:
        print(f"comet-pipeline {args.command}: error: {err}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
