"""Data-parallel training over processes launched by ``torchrun`` (PyTorch DistributedDataParallel).

One process per GPU (or CPU process with the ``gloo`` backend); ``torchrun`` sets
``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``, and
:func:`init_from_environment` joins the process group from them.
:func:`~comet_pipeline.training.trainer.train` then trains data-parallel by itself
(it asks :func:`current`); without an initialised process group every helper here
is the identity and training is the unchanged single-process code path.

How the trainer splits the work (``R`` ranks, rank ``r``):

- Every rank draws the same shuffle (the seeded generator is identical), so all
  ranks agree on each global batch ``B`` of ``batch_size`` images; rank ``r``
  takes the strided part ``B_r = B[r::R]`` (:meth:`DistContext.shard`).
- Rank ``r``'s loss is ``R · Σ_{i∈B_r} w_i L_i / Σ_{i∈B} w_i + λ‖θ‖²``. DDP averages
  the ranks' gradients, so the applied gradient is
  ``(1/R) Σ_r [R Σ_{B_r} w_i ∇L_i / Σ_B w_i + 2λθ] = Σ_B w_i ∇L_i / Σ_B w_i + 2λθ``:
  exactly the single-process gradient. The L2 term is added unscaled on every
  rank (its gradient ``2λθ`` is the same everywhere, and averaging ``R`` copies
  gives it once).
- Image scores (for CoMet's confidence weights) and validation losses are
  computed on each rank's shard of the images and gathered/summed over all ranks
  (:meth:`DistContext.gather`, :meth:`DistContext.mean`), so the quartiles and
  the threshold ``t``, ``Σ`` and ``λ`` are computed from all images and are
  identical on every rank.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as torch_dist
from torch import Tensor, nn

logger = logging.getLogger(__name__)

#: the variables ``torchrun`` sets for every process
ENV_VARS: tuple[str, ...] = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class DistContext:
    """This process's place in the process group: ``rank`` of ``world_size``, GPU ``local_rank``.

    The default instance is the single process (every helper returns its input).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def active(self) -> bool:
        """True when more than one process trains together."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that logs progress and writes files."""
        return self.rank == 0

    @property
    def device(self) -> torch.device:
        """Where collectives run: this rank's GPU with ``nccl``, else the CPU."""
        return torch.device("cuda", self.local_rank) if self.backend == "nccl" else torch.device("cpu")

    def train_device(self, requested: torch.device) -> torch.device:
        """The device this rank trains on: GPU ``LOCAL_RANK`` when a GPU was requested, else the CPU."""
        if not self.active:
            return requested
        if requested.type == "cuda":
            return torch.device("cuda", self.local_rank)
        if self.backend == "nccl":
            raise ValueError(
                "the process group uses the nccl backend, which needs CUDA tensors, but training was asked to "
                "run on the CPU; set the training device to 'auto' or 'cuda', or use the gloo backend"
            )
        return requested

    def rank_seed(self, seed: int) -> int:
        """Seed of this rank's own torch RNG (model noise, e.g. SimpleNet): ``seed`` on rank 0, distinct elsewhere."""
        if self.rank == 0:
            return seed
        return int(np.random.SeedSequence([seed, self.rank]).generate_state(1)[0])

    def shard(self, index: Tensor) -> Tensor:
        """This rank's strided part ``index[rank::world_size]`` (all of ``index`` in one process)."""
        return index[self.rank :: self.world_size] if self.active else index

    def gather(self, local: Tensor, total: int) -> Tensor:
        """Inverse of :meth:`shard`: every rank's 1-D ``local`` put back into the order of the ``total`` items.

        ``local`` is this rank's result for ``shard(x)`` of an ``x`` of length ``total``;
        every rank gets the same full tensor (on ``local``'s device).
        """
        if not self.active:
            return local
        expected = len(range(self.rank, total, self.world_size))
        if local.ndim != 1 or len(local) != expected:
            raise ValueError(
                f"rank {self.rank}: expected a 1-D shard of {expected} values, got shape {tuple(local.shape)}"
            )
        size = -(-total // self.world_size)  # the longest shard (rank 0's)
        padded = torch.zeros(size, dtype=local.dtype, device=self.device)
        padded[: len(local)] = local.to(self.device)
        pieces = [torch.empty_like(padded) for _ in range(self.world_size)]
        torch_dist.all_gather(pieces, padded)
        return interleave([p.cpu() for p in pieces], total).to(local.device)

    def sums(self, *values: Tensor | float) -> list[float]:
        """Each value summed over all ranks (one all-reduce in float64); the values themselves in one process."""
        flat = torch.stack([torch.as_tensor(v, dtype=torch.float64).detach().cpu().reshape(()) for v in values])
        if self.active:
            flat = flat.to(self.device)
            torch_dist.all_reduce(flat)
        return flat.cpu().tolist()

    def mean(self, values: Tensor) -> float:
        """Mean of ``values`` over all ranks' shards (``float(values.mean())`` in one process)."""
        if not self.active:
            return float(values.mean())
        total, count = self.sums(values.double().sum(), values.numel())
        return total / count if count else float("nan")

    def average(self, tensors: dict[str, Tensor], weight: float) -> dict[str, Tensor]:
        """Weighted average over ranks of same-shaped tensors (one all-reduce); ``weight`` 0 = no contribution.

        Used for gradients that bypass DDP's hooks (meta-learning's ``torch.autograd.grad``).
        """
        if not self.active:
            return tensors
        names = list(tensors)
        parts = [tensors[n].detach().reshape(-1).to(self.device, torch.float64) * weight for n in names]
        flat = torch.cat([*parts, torch.tensor([weight], dtype=torch.float64, device=self.device)])
        torch_dist.all_reduce(flat)
        total_weight = float(flat[-1])
        if total_weight <= 0:
            raise ValueError("no rank contributed to the average (every weight was 0)")
        out, offset = {}, 0
        for name in names:
            t = tensors[name]
            mean = flat[offset : offset + t.numel()] / total_weight
            out[name] = mean.reshape(t.shape).to(device=t.device, dtype=t.dtype)
            offset += t.numel()
        return out

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank (pickled between this job's own processes; for small plain data
        such as a checkpoint rank 0 has read with ``torch.load(weights_only=True)``)."""
        if not self.active:
            return obj
        box = [obj]
        torch_dist.broadcast_object_list(box, src=0, device=self.device if self.backend == "nccl" else None)
        return box[0]

    def gather_objects(self, obj: Any) -> list[Any]:
        """Every rank's ``obj`` in rank order, on every rank (``[obj]`` in one process)."""
        if not self.active:
            return [obj]
        out: list[Any] = [None] * self.world_size
        torch_dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        """Wait for every rank (no-op in one process)."""
        if self.active:
            torch_dist.barrier(device_ids=[self.local_rank] if self.backend == "nccl" else None)

    def wrap(self, model: nn.Module, device: torch.device) -> nn.Module:
        """``model`` in :class:`~torch.nn.parallel.DistributedDataParallel` (``model`` itself in one process).

        The wrapper broadcasts rank 0's parameters and buffers once, so every rank starts equal.
        """
        if not self.active:
            return model
        device_ids = [device] if device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


SINGLE = DistContext()


def interleave(pieces: list[Tensor], total: int) -> Tensor:
    """Merge strided shards (``pieces[r]`` holds items ``r, r + R, …``, possibly padded) into ``total`` items."""
    world = len(pieces)
    out = torch.empty(total, dtype=pieces[0].dtype)
    for r, piece in enumerate(pieces):
        out[r::world] = piece[: len(range(r, total, world))]
    return out


def current() -> DistContext:
    """The context of the initialised default process group, or :data:`SINGLE` (one process)."""
    if not (torch_dist.is_available() and torch_dist.is_initialized()):
        return SINGLE
    world = torch_dist.get_world_size()
    if world == 1:
        return SINGLE
    local_rank = int(os.environ.get("LOCAL_RANK", torch_dist.get_rank()))
    return DistContext(torch_dist.get_rank(), world, local_rank, str(torch_dist.get_backend()))


def launched_by_torchrun() -> bool:
    """True when the environment names more than one process (``WORLD_SIZE`` > 1)."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1) > 1


def init_from_environment(backend: str | None = None) -> DistContext:
    """Join the process group described by ``torchrun``'s environment variables; return the context.

    ``backend`` defaults to ``nccl`` when CUDA is available and ``gloo`` otherwise.
    With ``WORLD_SIZE`` unset or 1 nothing is initialised and :data:`SINGLE` is returned;
    an already initialised group is used as it is.

    Raises:
        RuntimeError: ``WORLD_SIZE`` > 1 but a variable ``torchrun`` sets is missing
            or torch.distributed is unavailable in this build.
    """
    if torch_dist.is_available() and torch_dist.is_initialized():
        return current()
    if not launched_by_torchrun():
        return SINGLE
    missing = [name for name in ENV_VARS if name not in os.environ]
    if missing:
        raise RuntimeError(
            f"WORLD_SIZE={os.environ['WORLD_SIZE']} but {', '.join(missing)} not set; launch with torchrun "
            "(e.g. torchrun --standalone --nproc_per_node 2 ...)"
        )
    if not torch_dist.is_available():
        raise RuntimeError("this torch build has no torch.distributed; cannot train on several processes")
    backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
    local_rank = int(os.environ["LOCAL_RANK"])
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    torch_dist.init_process_group(backend=backend, init_method="env://")
    ctx = current()
    logger.debug("rank %d of %d (local rank %d), backend %s", ctx.rank, ctx.world_size, ctx.local_rank, backend)
    return ctx


def shutdown() -> None:
    """Leave the process group (no-op when none is initialised)."""
    if torch_dist.is_available() and torch_dist.is_initialized():
        torch_dist.destroy_process_group()


def quiet_other_ranks(ctx: DistContext) -> None:
    """Only rank 0 logs INFO: the other ranks' ``comet_pipeline`` loggers are raised to WARNING."""
    if not ctx.is_main:
        logging.getLogger("comet_pipeline").setLevel(logging.WARNING)
