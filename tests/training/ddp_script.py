"""Run by test_distributed.py under ``torchrun`` (gloo, CPU): the cases of ``ddp_cases``, then the CLI.

usage: torchrun --standalone --nproc_per_node 2 ddp_script.py FEATURES.npy OUT_DIR PROJECT_DIR TRAIN_ARGS...

Every rank writes ``OUT_DIR/rank<r>.pt``: per case the summary of its result
(``ddp_cases.summary``), so the test can check that all ranks agree and compare
them with single-process training. Then every rank runs
``comet-pipeline train TRAIN_ARGS...`` in ``PROJECT_DIR`` (one launch for both
saves a second start of two interpreters).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))

from ddp_cases import CASES, run_case, summary  # noqa: E402

from comet_pipeline.command_line import main  # noqa: E402
from comet_pipeline.training import distributed  # noqa: E402

features_path, out_dir, project = sys.argv[1:4]
features = np.load(features_path)
ctx = distributed.init_from_environment()
assert ctx.active and ctx.backend == "gloo", ctx
results = {}
for name in CASES:
    checkpoint_dir = str(Path(out_dir) / f"checkpoint_{name}")
    results[name] = summary(run_case(name, features, checkpoint_dir=checkpoint_dir))
    if name == "flow":  # the finished run's checkpoint (written by rank 0, read for all ranks) returns at once
        results["flow_resumed"] = summary(run_case(name, features, checkpoint_dir=checkpoint_dir))
results["checkpoint_files"] = sorted(p.name for p in Path(out_dir).glob("checkpoint_*/*"))
torch.save(results, Path(out_dir) / f"rank{ctx.rank}.pt")

os.chdir(project)
sys.exit(main(["train", *sys.argv[4:]]))  # uses the initialised process group and leaves it at the end
