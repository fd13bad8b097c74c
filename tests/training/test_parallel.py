"""map_jobs: the same results in job order with or without worker processes; errors reach the caller."""

from __future__ import annotations

import math

import pytest

from comet_pipeline.parallel import map_jobs


@pytest.mark.parametrize("workers", [1, 2])
def test_results_come_back_in_job_order(workers) -> None:
    assert map_jobs(math.factorial, [6, 3, 5, 1], workers=workers) == [720, 6, 120, 1]


def test_a_job_error_is_raised_in_the_caller() -> None:
    with pytest.raises(ValueError, match="math domain error"):
        map_jobs(math.sqrt, [4.0, -1.0, 9.0], workers=2)


@pytest.mark.parametrize("workers", [0, -2, 1.5, True])
def test_workers_must_be_a_positive_int(workers) -> None:
    with pytest.raises(ValueError, match="workers"):
        map_jobs(math.factorial, [1], workers=workers)
