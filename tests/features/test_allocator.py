"""glibc allocator tuning: applied on glibc Linux, skipped on request."""

from __future__ import annotations

import platform
import sys

import pytest

from comet_pipeline.allocator import tune_malloc


def test_opt_out_leaves_the_allocator_alone(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("COMET_MALLOC_TUNING", "0")
    assert tune_malloc() is False


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's"
)
def test_thresholds_are_set_on_glibc(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("COMET_MALLOC_TUNING", raising=False)
    assert tune_malloc() is True
