"""atomic_write: the old file or the whole new one, never a partial file or a left-over temporary."""

from __future__ import annotations

import pytest

from comet_pipeline.atomic import atomic_write


@pytest.mark.parametrize("fsync", [False, True])
def test_replaces_the_file(tmp_path, fsync):
    target = tmp_path / "state.bin"
    target.write_bytes(b"old")
    atomic_write(target, lambda handle: handle.write(b"new"), fsync=fsync)
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["state.bin"]


def test_failed_write_keeps_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "state.bin"
    target.write_bytes(b"old")

    def half_then_fail(handle):
        handle.write(b"ha")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, half_then_fail)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["state.bin"]
