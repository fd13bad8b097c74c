"""Keep glibc's allocator from returning PyTorch's large CPU buffers to the OS after every use.

glibc serves allocations above ``M_MMAP_THRESHOLD`` (128 KiB to 32 MiB, adaptive) with a
fresh ``mmap`` and unmaps them on ``free``; the heap top is trimmed past
``M_TRIM_THRESHOLD``. A backbone forward allocates and frees tens of MB-sized activations
per batch, so every batch page-faults its buffers in again: on the 2-core reference
machine the extraction benchmark spent 32 s of its 40 s in the kernel (docs/benchmarks.md §3).
Raising both thresholds to 1 GiB makes the heap keep and reuse that memory (same
effect as the jemalloc/tcmalloc preload PyTorch recommends for CPU inference, without
a native dependency). Cost: up to ~1 GiB of freed memory stays mapped in the process.

Applied when a :class:`~comet_pipeline.features.backbones.FeatureExtractor` is built
(feature extraction, inference, export), where it made extraction 2–3× faster on the
reference machine; training on cached features is unaffected (measured, §3). Set
``COMET_MALLOC_TUNING=0`` to leave the allocator alone. A no-op off glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_TRIM_THRESHOLD = -1  # mallopt parameter numbers from glibc's <malloc.h>
M_MMAP_THRESHOLD = -3
THRESHOLD_BYTES = 1 << 30


def tune_malloc(threshold_bytes: int = THRESHOLD_BYTES) -> bool:
    """``mallopt(M_MMAP_THRESHOLD, n)`` and ``mallopt(M_TRIM_THRESHOLD, n)``; True when both took effect.

    Returns False (and changes nothing) when ``COMET_MALLOC_TUNING=0``, off Linux, or
    when the C library has no ``mallopt`` (musl, macOS, Windows).
    """
    if os.environ.get("COMET_MALLOC_TUNING", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, threshold_bytes)) and bool(mallopt(M_TRIM_THRESHOLD, threshold_bytes))
