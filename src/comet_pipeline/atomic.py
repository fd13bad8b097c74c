"""Atomic file writes: readers see the old file or the complete new one, never a partial write."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], None], fsync: bool = False) -> None:
    """Call ``write(handle)`` on a temporary file in ``path``'s folder, then ``os.replace`` it onto ``path``.

    The temporary name is unique (``mkstemp``), so concurrent writers never share one;
    it is removed if ``write`` fails. ``fsync=True`` flushes the data to disk before the
    rename (for state that must survive a machine crash, e.g. checkpoints).
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
