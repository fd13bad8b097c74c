"""The comet-pipeline command: score a folder (table, overlays, overwrite guard, unreadable files) and export."""

from __future__ import annotations

import shutil
from pathlib import Path

import onnx
import pandas as pd
import pytest
from PIL import Image

from comet_pipeline.command_line import EXIT_ERROR, EXIT_UNREADABLE, main


@pytest.fixture()
def folder(images_dir: Path, tmp_path: Path) -> Path:
    """A copy of the test images plus one corrupt file."""
    copy = Path(shutil.copytree(images_dir, tmp_path / "images"))
    (copy / "good" / "corrupt.png").write_bytes(b"\x89PNG truncated")
    return copy


def test_score_folder_writes_table_and_maps_and_guards_outputs(bundle_dirs, folder, image_paths, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["score", str(folder), "--model", str(bundle_dirs["flow"]), "--output", str(out), "--batch-size", "4"]
    assert main([*args, "--device", "cpu"]) == EXIT_UNREADABLE
    assert "corrupt.png" in capsys.readouterr().err
    table = pd.read_csv(out / "scores.csv", keep_default_na=False)
    assert len(table) == len(image_paths) + 1
    bad = table[table["path"].str.endswith("corrupt.png")].iloc[0]
    assert bad["decision"] == "error" and bad["error"] and bad["score"] == ""
    good = table[table["decision"] != "error"]
    assert set(good["decision"]) <= {"anomalous", "normal"}
    for name in good["map"]:
        with Image.open(out / name) as overlay:
            assert overlay.size == (64, 64) and overlay.mode == "RGB"
    assert len(list((out / "maps").rglob("*.png"))) == len(image_paths)

    stamp = (out / "scores.csv").stat().st_mtime_ns
    assert main(args) == EXIT_ERROR
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "scores.csv").stat().st_mtime_ns == stamp

    (folder / "good" / "corrupt.png").unlink()
    assert main([*args, "--overwrite"]) == 0
    assert len(pd.read_csv(out / "scores.csv")) == len(image_paths)


def test_missing_or_corrupt_bundle_exits_non_zero(images_dir, bundle_dirs, tmp_path, capsys):
    args = ["score", str(images_dir), "--output", str(tmp_path / "out"), "--model"]
    assert main([*args, str(tmp_path / "nope")]) == EXIT_ERROR
    assert "does not exist" in capsys.readouterr().err
    corrupt = Path(shutil.copytree(bundle_dirs["flow"], tmp_path / "corrupt"))
    (corrupt / "bundle.json").write_text("[]")
    assert main([*args, str(corrupt)]) == EXIT_ERROR
    assert "JSON object" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_export_command_writes_checked_onnx_and_refuses_overwrite(bundle_dirs, tmp_path, capsys):
    target = tmp_path / "model.onnx"
    args = ["export", "--model", str(bundle_dirs["simplenet"]), "--format", "onnx", "--output", str(target)]
    assert main(args) == 0
    assert "parity with PyTorch checked" in capsys.readouterr().out
    onnx.checker.check_model(onnx.load(str(target)))
    assert main(args) == EXIT_ERROR
