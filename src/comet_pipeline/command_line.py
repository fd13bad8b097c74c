"""``comet-pipeline``: score images with a model bundle, or export a bundle.

    comet-pipeline score <file-or-folder> --model <bundle dir> [--output DIR] [--overwrite]
                         [--batch-size N] [--device auto|cpu|cuda]
    comet-pipeline export --model <bundle dir> --format torchscript|onnx --output FILE [--overwrite]

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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="comet-pipeline", description="Score images with a model bundle, or export a bundle."
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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``comet-pipeline`` console script; returns the exit code."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return _score(args) if args.command == "score" else _export(args)
    except (BundleError, FileNotFoundError, FileExistsError, ValueError, RuntimeError) as err:
        print(f"comet-pipeline {args.command}: error: {err}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
