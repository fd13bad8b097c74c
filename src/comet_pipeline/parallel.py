"""Independent jobs in worker processes: the noise sweep's blocks, the trainings of a pipeline run.

``map_jobs(fn, jobs, workers)`` returns ``[fn(job) for job in jobs]``. With
``workers > 1`` (and at least two jobs) the jobs run in that many spawned
processes with ``torch.get_num_threads() // workers`` torch threads each (at least
one). Small models train faster this way than with all threads in one process
(2 cores: two single-threaded workers finish ~1.3x sooner). ``fn`` and the jobs
must be picklable (a module-level function, or a ``functools.partial`` of one).

Numbers are the same computation either way, but float reductions with another
thread count round differently, so a result can differ in the last digits
(and chaotic trainings such as SimpleNet's by more) from a run with other ``workers``.
"""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import TypeVar

import torch
from tqdm.auto import tqdm

logger = logging.getLogger(__name__)

Job = TypeVar("Job")
Result = TypeVar("Result")


def _init_worker(threads: int) -> None:
    torch.set_num_threads(threads)


def map_jobs(
    fn: Callable[[Job], Result],
    jobs: Sequence[Job],
    workers: int = 1,
    desc: str = "jobs",
    sizes: Sequence[int] | None = None,
    unit: str = "job",
) -> list[Result]:
    """``[fn(job) for job in jobs]``, in ``workers`` processes when > 1; a progress bar of ``sizes`` (default 1 each).

    A job's exception is re-raised here (jobs already finished keep their side effects).
    """
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    sizes = list(sizes) if sizes is not None else [1] * len(jobs)
    results: list[Result | None] = [None] * len(jobs)
    with tqdm(total=sum(sizes), desc=desc, unit=unit) as bar:
        if workers == 1 or len(jobs) < 2:
            for i, job in enumerate(jobs):
                results[i] = fn(job)
                bar.update(sizes[i])
        else:
            threads = max(1, torch.get_num_threads() // workers)
            logger.info("%s: %d jobs in %d worker processes, %d torch thread(s) each", desc, len(jobs), workers, threads)
            with ProcessPoolExecutor(
                max_workers=min(workers, len(jobs)),
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
                initargs=(threads,),
            ) as pool:
                futures = {pool.submit(fn, job): i for i, job in enumerate(jobs)}
                for future in as_completed(futures):
                    i = futures[future]
                    results[i] = future.result()
                    bar.update(sizes[i])
    return results  # type: ignore[return-value]
