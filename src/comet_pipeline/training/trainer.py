"""One training loop for the baseline and CoMet (CoMet = switches on the same loop).

Per step, on a task batch ``B`` with confidence weights ``w`` (all 1 unless
confidence weighting is on)::

    L(θ) = Σ_{i∈B} w_i L_AD(x_i; θ) / Σ_{i∈B} w_i  +  λ(Σ) ‖θ‖²

with ``λ(Σ) = λ0 (1 + γ det Σ)`` when covariance regularisation is on and ``0``
otherwise (``Σ`` of the last epochs' (mean training loss, validation loss)
pairs); with meta-learning the gradient of ``L`` is replaced by the
meta-gradient of a support/query split (:mod:`comet_pipeline.comet.meta`).
Inside an initialised ``torch.distributed`` process group (``torchrun``) the same
loop trains data-parallel (:mod:`comet_pipeline.training.distributed`).
With every switch off the loop is the plain baseline: it runs the same code and
consumes the random number generators in the same order, so parameters are
bit-identical to a baseline run with the same seed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import pickle
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from comet_pipeline.comet.confidence import confidence_weights
from comet_pipeline.comet.meta import META_ORDERS, meta_gradients, scl_loss
from comet_pipeline.comet.model_uncertainty import LossWindow, adaptive_lambda
from comet_pipeline.atomic import atomic_write
from comet_pipeline.config import ConfigError
from comet_pipeline.devices import resolve_device
from comet_pipeline.safety import load_error_reason
from comet_pipeline.models.base import AnomalyModel
from comet_pipeline.training.distributed import DistContext
from comet_pipeline.training.distributed import current as current_distributed

logger = logging.getLogger(__name__)

OPTIMIZERS: tuple[str, ...] = ("adam", "sgd")
NONFINITE_CHOICES: tuple[str, ...] = ("raise", "skip")
HISTORY_COLUMNS: tuple[str, ...] = (
    "epoch", "train_loss", "val_loss", "lambda", "det_sigma", "n_weighted", "mean_weight", "n_skipped", "seconds",
)
#: the checkpoint file inside ``TrainConfig.checkpoint_dir`` (the state after the last finished epoch)
CHECKPOINT_FILE = "checkpoint.pt"
CHECKPOINT_FORMAT = 2
_CHECKPOINT_KEYS = frozenset(
    {"format", "fingerprint", "epoch", "model", "optimizer", "weights", "window", "history", "weight_frames", "rng"}
)
WEIGHT_COLUMNS: tuple[str, ...] = ("epoch", "sample_id", "score", "weight", "final")


def _int_problem(name: str, value: object, minimum: int) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        return f"{name}: expected an integer >= {minimum}, got {value!r}"
    return None


def _float_problem(name: str, value: object, minimum: float, strict: bool = False) -> str | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < minimum or (strict and value == minimum):
        bound = ">" if strict else ">="
        return f"{name}: expected a finite number {bound} {minimum}, got {value!r}"
    return None


def _check_int(name: str, value: object, minimum: int) -> None:
    problem = _int_problem(name, value, minimum)
    if problem:
        raise ValueError(problem)


def _raise_problems(problems: list[str | None]) -> None:
    """One :class:`ConfigError` (a ValueError) listing every problem, if any."""
    found = [p for p in problems if p]
    if found:
        raise ConfigError(found)


@dataclass
class TrainConfig:
    """Optimisation settings shared by the baseline and CoMet.

    ``val_fraction`` of the (uncurated) training images is always held out for
    validation — also for the baseline, so every variant trains on the same images.

    ``on_nonfinite``: what a non-finite training loss or gradient does — ``"raise"``
    (FloatingPointError naming epoch and step) or ``"skip"`` (the batch is not
    applied, a warning is logged and the history's ``n_skipped`` counts it).
    Either way a model with a non-finite parameter is never returned or
    checkpointed: that raises FloatingPointError.

    ``checkpoint_dir``: when set, the full training state is written there after
    every epoch (atomically) and :func:`train` resumes from it; see
    :data:`CHECKPOINT_FILE`.
    """

    epochs: int = 20
    batch_size: int = 16
    lr: float = 1e-3
    optimizer: str = "adam"
    weight_decay: float = 0.0
    val_fraction: float = 0.15
    seed: int = 0
    device: str = "auto"
    log_every: int = 1
    on_nonfinite: str = "raise"
    checkpoint_dir: str | None = None

    def __post_init__(self) -> None:
        problems = [
            _int_problem("epochs", self.epochs, 1),
            _int_problem("batch_size", self.batch_size, 1),
            _float_problem("lr", self.lr, 0.0, strict=True),
            None if self.optimizer in OPTIMIZERS else f"optimizer: expected one of {OPTIMIZERS}, got {self.optimizer!r}",
            _float_problem("weight_decay", self.weight_decay, 0.0),
            _float_problem("val_fraction", self.val_fraction, 0.0, strict=True)
            or (f"val_fraction: expected a number in (0, 1), got {self.val_fraction!r}" if self.val_fraction >= 1 else None),
            _int_problem("seed", self.seed, 0),
            _int_problem("log_every", self.log_every, 1),
            None
            if self.on_nonfinite in NONFINITE_CHOICES
            else f"on_nonfinite: expected one of {NONFINITE_CHOICES}, got {self.on_nonfinite!r}",
            None
            if self.checkpoint_dir is None or (isinstance(self.checkpoint_dir, str) and self.checkpoint_dir.strip())
            else f"checkpoint_dir: expected a folder path or None, got {self.checkpoint_dir!r}",
        ]
        try:
            resolve_device(self.device)
        except ValueError as err:
            problems.append(f"device: {err}")
        _raise_problems(problems)


@dataclass
class CoMetConfig:
    """CoMet switches and hyper-parameters; every switch off = the baseline.

    - ``confidence_weighting``: ``w_i = min(1, t / a_θ(x_i))`` with fence factor
      ``kappa``, recomputed from epoch ``warmup_epochs`` on, every ``reweight_every``
      epochs (weights are 1 before).
    - ``covariance_regularization``: ``+ λ(Σ) ‖θ‖²``, ``λ = lambda0 (1 + gamma det Σ)``,
      ``Σ`` over the last ``window`` epochs' (mean training loss, validation loss)
      pairs (one pair per epoch, as the authors' code).
    - ``meta_learning``: inner step(s) (``inner_steps``, learning rate
      ``inner_lr`` = α) on half of each batch, outer gradient (``meta_order``) on
      the other half.
    """

    confidence_weighting: bool = False
    covariance_regularization: bool = False
    meta_learning: bool = False
    kappa: float = 1.5
    warmup_epochs: int = 2
    reweight_every: int = 1
    lambda0: float = 1e-5
    gamma: float = 0.5
    window: int = 10
    inner_lr: float = 1e-3
    inner_steps: int = 1
    meta_order: str = "first"

    def __post_init__(self) -> None:
        problems: list[str | None] = [
            None if isinstance(getattr(self, switch), bool) else f"{switch}: expected True or False, got {getattr(self, switch)!r}"
            for switch in ("confidence_weighting", "covariance_regularization", "meta_learning")
        ]
        problems += [
            _float_problem("kappa", self.kappa, 0.0),
            _int_problem("warmup_epochs", self.warmup_epochs, 0),
            _int_problem("reweight_every", self.reweight_every, 1),
            _float_problem("lambda0", self.lambda0, 0.0),
            _float_problem("gamma", self.gamma, 0.0),
            _int_problem("window", self.window, 2),
            _float_problem("inner_lr", self.inner_lr, 0.0, strict=True),
            _int_problem("inner_steps", self.inner_steps, 1),
            None if self.meta_order in META_ORDERS else f"meta_order: expected one of {META_ORDERS}, got {self.meta_order!r}",
        ]
        _raise_problems(problems)

    @property
    def enabled(self) -> bool:
        """True when any CoMet component is switched on."""
        return self.confidence_weighting or self.covariance_regularization or self.meta_learning


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        model: the trained model (eval mode).
        history: one row per epoch, columns :data:`HISTORY_COLUMNS`; ``train_loss``
            is the unweighted mean ``L_AD`` of the epoch's steps, ``val_loss`` the
            mean ``L_AD`` over the validation images after the epoch, ``lambda`` /
            ``det_sigma`` the values the epoch trained with, ``n_weighted`` the
            number of training images with ``w < 1``, ``n_skipped`` the batches skipped for
            non-finite values (``on_nonfinite="skip"``).
        weights: long form, columns :data:`WEIGHT_COLUMNS`: the weights of the
            training images at every re-weighting epoch (``final=False``) and the
            final weights of all images (``final=True``, ``epoch = epochs``).
        final_weights: ``w`` per ``sample_id`` of all images (training and
            validation) from the final model's scores; all 1.0 without confidence
            weighting.
        train_ids / val_ids: the images trained on / held out for validation.
        train_scores / val_scores: the final model's scores of those images, in that order.
    """

    model: AnomalyModel
    history: pd.DataFrame
    weights: pd.DataFrame
    final_weights: pd.Series
    train_ids: list[str]
    val_ids: list[str]
    train_scores: np.ndarray
    val_scores: np.ndarray


@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode and no grad inside; the previous train/eval mode is restored after."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


def _batched(
    fn: Callable[[Tensor], Tensor],
    features: Tensor,
    batch_size: int,
    device: torch.device,
    index: Tensor | None = None,
) -> Tensor:
    """``fn`` over ``features[index]`` in batches (float32 on ``device``), concatenated on the CPU."""
    index = torch.arange(len(features)) if index is None else index
    out = [fn(features[chunk.to(features.device)].to(device).float()).cpu() for chunk in index.split(batch_size)]
    return torch.cat(out) if out else torch.empty(0)


def _model_device(model: nn.Module, device: str | torch.device | None) -> torch.device:
    if device is not None:
        return device if isinstance(device, torch.device) else resolve_device(device)
    first = next(iter(model.parameters()), None)
    return first.device if first is not None else torch.device("cpu")


def score_features(
    model: AnomalyModel,
    features: Tensor | np.ndarray,
    batch_size: int = 64,
    device: str | torch.device | None = None,
) -> np.ndarray:
    """Image anomaly scores ``model.score(x)`` of all ``features`` (eval mode, no grad), shape ``(N,)``.

    ``device`` defaults to the model's device; the model must already live there.
    """
    _check_int("batch_size", batch_size, 1)
    dev = _model_device(model, device)
    with _eval_mode(model):
        return _batched(model.score, torch.as_tensor(features), batch_size, dev).numpy()


def anomaly_maps(
    model: AnomalyModel,
    features: Tensor | np.ndarray,
    size: tuple[int, int],
    batch_size: int = 16,
    device: str | torch.device | None = None,
) -> np.ndarray:
    """Pixel anomaly maps ``model.anomaly_map(x, size)`` of all ``features``, shape ``(N, H, W)``."""
    _check_int("batch_size", batch_size, 1)
    dev = _model_device(model, device)
    with _eval_mode(model):
        return _batched(lambda x: model.anomaly_map(x, size), torch.as_tensor(features), batch_size, dev).numpy()


def _split(n: int, val_fraction: float, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Random (train, validation) index split, each sorted; at least one image in each."""
    n_val = max(1, round(val_fraction * n))
    if n - n_val < 1:
        raise ValueError(f"need at least 2 images to hold out val_fraction={val_fraction} for validation, got {n}")
    perm = torch.randperm(n, generator=generator)
    return perm[n_val:].sort().values, perm[:n_val].sort().values


def _weight_frame(epoch: int, ids: list[str], scores: Tensor, weights: Tensor, final: bool) -> pd.DataFrame:
    """Long-form rows ``(epoch, sample_id, score, weight, final)`` of one weighting."""
    return pd.DataFrame(
        {"epoch": epoch, "sample_id": ids, "score": scores.numpy(), "weight": weights.numpy(), "final": final}
    )


def _halves(index: Tensor) -> tuple[Tensor, Tensor]:
    """Support/query split of a task batch (first/second half; a single sample serves as both)."""
    if len(index) < 2:
        return index, index
    half = len(index) // 2
    return index[:half], index[half:]


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used (unsafe, corrupt or of another format); ``.path`` names it."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"checkpoint {self.path}: {reason}; delete it to start training afresh")


def _tensor_bytes(tensor: Tensor) -> bytes:
    return tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def _fingerprint(
    model: nn.Module,
    features: Tensor,
    ids: list[str],
    config: TrainConfig,
    comet: CoMetConfig,
    device: torch.device,
    dist: DistContext,
) -> str:
    """SHA-256 of everything that determines a training run's result.

    The train/CoMet settings (except where checkpoints go and how often to log),
    the resolved device, the model class and its initial parameters and buffers,
    the sample ids and the feature values; data-parallel runs add the number of
    processes and record the device type only (each rank has its own GPU index).
    """
    settings = {k: v for k, v in dataclasses.asdict(config).items() if k not in ("checkpoint_dir", "log_every")}
    header = {
        "format": CHECKPOINT_FORMAT,
        "train": settings,
        "comet": dataclasses.asdict(comet),
        "device": str(device),
        "model": f"{type(model).__module__}.{type(model).__qualname__}",
        "ids": ids,
        "features": [list(features.shape), str(features.dtype)],
    }
    if dist.active:
        header |= {"device": device.type, "world_size": dist.world_size}
    digest = hashlib.sha256(json.dumps(header, sort_keys=True, default=str).encode())
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(_tensor_bytes(tensor))
    digest.update(_tensor_bytes(features))
    return digest.hexdigest()


def _save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """``torch.save`` to a temporary file in the same folder, fsync, then ``os.replace`` (atomic)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda handle: torch.save(state, handle), fsync=True)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`train` with ``torch.load(weights_only=True)``.

    Only tensors and plain data (dicts, lists, numbers, strings) are accepted: a
    file holding any other pickled object is refused before anything in it runs.

    Raises:
        CheckpointError: unsafe content, corrupt/unreadable file or another format.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, KeyError, AttributeError) as err:
        raise CheckpointError(path, load_error_reason(err)) from err
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT or not _CHECKPOINT_KEYS <= state.keys():
        raise CheckpointError(path, f"not a training checkpoint of format {CHECKPOINT_FORMAT}")
    return state


def _check_finite_model(model: nn.Module, when: str) -> None:
    """FloatingPointError naming the parameters/buffers with NaN or Inf values."""
    bad = [
        name
        for name, tensor in model.state_dict().items()
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())
    ]
    if bad:
        raise FloatingPointError(
            f"{len(bad)} model tensor(s) hold NaN/Inf values {when} ({', '.join(bad[:5])}); "
            "the model is not returned or saved (lower lr, or check the features for NaN/Inf)"
        )


def _weights_or_raise(scores: Tensor, ids: list[str], kappa: float, when: str) -> tuple[Tensor, float]:
    """Confidence weights; non-finite scores raise FloatingPointError naming the images."""
    finite = torch.isfinite(scores)
    if not bool(finite.all()):
        bad = [ids[i] for i in torch.nonzero(~finite).flatten().tolist()]
        raise FloatingPointError(
            f"{len(bad)} image(s) have a non-finite anomaly score {when} ({', '.join(bad[:5])}); "
            "confidence weights need finite scores (check these images' features)"
        )
    return confidence_weights(scores, kappa)


def _read_checkpoint(path: Path, dist: DistContext) -> dict[str, Any] | None:
    """The checkpoint at ``path``, or None when there is none; data-parallel: rank 0 reads it for all ranks."""
    if not dist.active:
        return load_checkpoint(path) if path.exists() else None
    outcome: dict[str, Any] | str | None = None
    if dist.is_main and path.exists():
        try:
            outcome = load_checkpoint(path)
        except CheckpointError as err:
            outcome = err.reason
    outcome = dist.broadcast(outcome)  # one decision for every rank (and no shared file system needed)
    if isinstance(outcome, str):
        raise CheckpointError(path, outcome)
    return outcome


def _rng_state(device: torch.device, generators: dict[str, torch.Generator], dist: DistContext) -> dict[str, Any]:
    """The RNG states a checkpoint stores; data-parallel runs add every rank's own torch/CUDA state (``ranks``)."""
    rng: dict[str, Any] = {"torch": torch.get_rng_state(), **{k: g.get_state() for k, g in generators.items()}}
    if device.type == "cuda":
        rng["cuda"] = torch.cuda.get_rng_state_all()
    if dist.active:  # a collective: every rank must call this
        rng["ranks"] = dist.gather_objects({k: rng[k] for k in ("torch", "cuda") if k in rng})
    return rng


def _restore_rng(
    rng: dict[str, Any], device: torch.device, generators: dict[str, torch.Generator], dist: DistContext
) -> None:
    own = rng["ranks"][dist.rank] if dist.active else rng
    torch.set_rng_state(own["torch"])
    for key, generator in generators.items():
        generator.set_state(rng[key])
    if device.type == "cuda" and own.get("cuda"):
        torch.cuda.set_rng_state_all(own["cuda"])


def _step_losses(loss: Tensor, per_sample: Tensor, dist: DistContext) -> tuple[float, float]:
    """``(loss, unweighted mean per-sample loss)`` of a step; data-parallel: over all ranks' parts
    (one all-reduce; a NaN/Inf on any rank reaches every rank, so all skip or raise together)."""
    if not dist.active:
        return float(loss.detach()), float(per_sample.detach().mean())
    loss_total, loss_sum, count = dist.sums(loss, per_sample.sum(), per_sample.numel())
    return loss_total, loss_sum / count


def train(
    model: AnomalyModel,
    features: Tensor | np.ndarray,
    sample_ids: Sequence[str],
    config: TrainConfig | None = None,
    comet: CoMetConfig | None = None,
    progress: bool = True,
    dist: DistContext | None = None,
) -> TrainResult:
    """Train ``model`` on uncurated ``features`` (N, ...) with optional CoMet components.

    The images are split once (seeded) into training and validation images;
    ``torch.manual_seed(config.seed)`` seeds the model's own randomness and a
    seeded ``torch.Generator`` drives the split and the per-epoch shuffles.
    Features may be float16: they are moved to the device once and converted to
    float32 per batch.

    Per epoch, with confidence weighting from ``warmup_epochs`` on (every
    ``reweight_every`` epochs), all training images are scored by the current
    model and get ``w = confidence_weights(scores, kappa)``; weights live in one
    vector aligned with ``sample_ids`` and each batch looks them up by its images'
    global indices (never by batch position). Per step the loss is
    ``Σ w_i L_AD(x_i) / Σ w_i + λ(Σ) ‖θ‖²`` (``λ = 0`` without covariance
    regularisation; otherwise ``λ`` is fixed for the epoch from the window as it
    stands at its start; after the epoch the window appends the epoch's mean
    training loss and the validation loss — no extra forward passes, the
    validation loss is computed for the history anyway). With meta-learning the
    batch is split in support/query halves and the optimizer applies
    :func:`~comet_pipeline.comet.meta.meta_gradients`; the step's training loss
    is then the unweighted support loss at θ.

    Non-finite values: a NaN/Inf training loss or gradient raises
    FloatingPointError naming epoch and step, or with
    ``config.on_nonfinite="skip"`` skips that batch (no update; counted in the
    history's ``n_skipped``); a non-finite validation loss raises, or is left out
    of ``Σ`` with a warning. The model's parameters and buffers are checked after
    every epoch and at the end: a non-finite one always raises, so a NaN model is
    never returned or checkpointed.

    Checkpoints: with ``config.checkpoint_dir`` the state after every epoch —
    model, optimizer, CoMet weights vector, loss window, history, re-weightings
    and the torch CPU/CUDA and shuffle RNG states — is written
    atomically to ``<checkpoint_dir>/checkpoint.pt`` (tensors and plain data, read
    back with ``torch.load(weights_only=True)``). A later call with the same
    configuration, model class and initial parameters, sample ids and features
    (a SHA-256 fingerprint of all of them) resumes after the last finished epoch
    and ends with the same parameters as an uninterrupted run; a checkpoint of a
    different run is ignored with a warning and overwritten. A finished run's
    checkpoint makes a repeated call return at once (no epochs left to run).
    The trainer draws from no numpy or Python RNG, so none is stored.

    Data-parallel: inside an initialised ``torch.distributed`` process group
    (processes launched by ``torchrun``, see
    :mod:`comet_pipeline.training.distributed`; ``dist`` overrides the detection,
    ``DistContext()`` forces one process) every rank calls ``train`` with the same
    arguments and trains its strided share of each batch in
    :class:`~torch.nn.parallel.DistributedDataParallel`, with the loss scaled so
    that the averaged gradient is the single-process one; scores for the
    confidence weights and validation losses are gathered over all ranks. Without
    meta-learning and with a noise-free model (the flow) the result equals
    single-process training up to float rounding. Meta-learning's gradients bypass
    DDP and are averaged explicitly; its support/query tasks are then each rank's
    halves of its share, so the run differs from single-process meta-learning.
    Each rank draws its own model noise (seed ``config.seed`` on rank 0). Only
    rank 0 logs progress and writes checkpoints (it reads them for all ranks);
    every rank returns the same result (but its own ``seconds``).

    Raises:
        ValueError: on inconsistent inputs (lengths, duplicate ids).
        FloatingPointError: non-finite loss/gradient (``on_nonfinite="raise"``),
            parameters or confidence-weighting scores (epoch/step or images named).
        CheckpointError: the checkpoint file is unsafe (holds pickled objects other
            than tensors and plain data), corrupt or of another format.
    """
    config = TrainConfig() if config is None else config
    comet = CoMetConfig() if comet is None else comet
    ids = [str(s) for s in sample_ids]
    n = len(ids)
    if len(features) != n:
        raise ValueError(f"features has {len(features)} rows but sample_ids has {n} entries")
    if len(set(ids)) != n:
        raise ValueError("sample_ids must be unique")

    dist = current_distributed() if dist is None else dist
    device = dist.train_device(resolve_device(config.device))
    torch.manual_seed(dist.rank_seed(config.seed))  # config.seed itself in one process and on rank 0
    generator = torch.Generator().manual_seed(config.seed)
    feats = torch.as_tensor(features).to(device)
    train_idx, val_idx = _split(n, config.val_fraction, generator)
    train_ids = [ids[i] for i in train_idx.tolist()]
    val_ids = [ids[i] for i in val_idx.tolist()]
    n_train = len(train_idx)
    train_on_device = train_idx.to(device)

    model.to(device)
    params = {name: p for name, p in model.named_parameters() if p.requires_grad}
    if not params:
        raise ValueError("model has no trainable parameters (none with requires_grad=True)")
    optimizer_cls = torch.optim.Adam if config.optimizer == "adam" else torch.optim.SGD
    optimizer = optimizer_cls(list(params.values()), lr=config.lr, weight_decay=config.weight_decay)

    weights = torch.ones(n, device=device)  # w per image, indexed like sample_ids
    window = LossWindow(comet.window)
    weight_frames: list[pd.DataFrame] = []
    reweightings: list[dict[str, Any]] = []  # the same weightings as plain data, for checkpoints
    history: list[dict[str, float]] = []
    start_epoch = 0

    checkpoint = Path(config.checkpoint_dir) / CHECKPOINT_FILE if config.checkpoint_dir else None
    fingerprint = _fingerprint(model, feats, ids, config, comet, device, dist) if checkpoint else ""
    generators = {"shuffle": generator}
    state = _read_checkpoint(checkpoint, dist) if checkpoint is not None else None
    if state is not None:
        if state["fingerprint"] != fingerprint:
            logger.warning(
                "checkpoint %s belongs to another configuration, model or data; training from scratch "
                "(it is overwritten after the first epoch)", checkpoint,
            )
        else:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            weights.copy_(state["weights"].to(device))
            for train_loss, val_loss in state["window"]:
                window.append(train_loss, val_loss)
            columns = state["history"]
            history = [{c: columns[c][i] for c in HISTORY_COLUMNS} for i in range(len(columns["epoch"]))]
            reweightings = list(state["weight_frames"])
            weight_frames = [
                _weight_frame(f["epoch"], train_ids, f["scores"], f["weights"], final=False) for f in reweightings
            ]
            _restore_rng(state["rng"], device, generators, dist)
            start_epoch = int(state["epoch"])
            logger.info("resuming from %s after epoch %d/%d", checkpoint, start_epoch, config.epochs)

    logger.info(
        "training %s on %d images (%d held out for validation), device=%s, comet=%s",
        type(model).__name__, n_train, len(val_idx), device, comet if comet.enabled else "off",
    )
    if dist.active:
        logger.info(
            "data-parallel on %d processes (backend %s): each trains its share of every batch",
            dist.world_size, dist.backend,
        )

    def current_lambda() -> tuple[float, float]:
        if not comet.covariance_regularization:
            return 0.0, 0.0
        det = window.determinant()
        return adaptive_lambda(det, comet.lambda0, comet.gamma), det

    def mean_loss(index: Tensor) -> float:
        """Mean loss of the images ``index``; a forked RNG keeps losses that draw noise (SimpleNet)
        from shifting the training stream."""
        rng_devices = [device] if device.type == "cuda" else []
        with _eval_mode(model), torch.random.fork_rng(devices=rng_devices):
            return dist.mean(_batched(model, feats, config.batch_size, device, dist.shard(index)))

    def scores_of(index: Tensor) -> Tensor:
        """Scores of ``features[index]`` (CPU); data-parallel: each rank scores its shard, all get all."""
        with _eval_mode(model):
            return dist.gather(_batched(model.score, feats, config.batch_size, device, dist.shard(index)), len(index))

    def non_finite(message: str) -> None:
        """Raise, or (``on_nonfinite="skip"``) log that the batch is skipped."""
        if config.on_nonfinite == "raise":
            raise FloatingPointError(f"{message} (TrainConfig.on_nonfinite='skip' skips such batches)")
        logger.warning("%s; batch skipped (on_nonfinite='skip')", message)

    def save_checkpoint(epochs_done: int) -> None:
        assert checkpoint is not None
        rng = _rng_state(device, generators, dist)
        if not dist.is_main:
            return
        lam, det = current_lambda()
        state = {
            "format": CHECKPOINT_FORMAT,
            "fingerprint": fingerprint,
            "epoch": epochs_done,
            "model": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
            "optimizer": optimizer.state_dict(),
            "weights": weights.detach().cpu().clone(),
            "window": [list(pair) for pair in window._pairs],  # LossWindow has no public accessor
            "lambda": lam,
            "det_sigma": det,
            "history": {c: [row[c] for row in history] for c in HISTORY_COLUMNS},
            "weight_frames": reweightings,
            "rng": rng,
        }
        _save_checkpoint(checkpoint, state)
        logger.debug("checkpoint after epoch %d written to %s", epochs_done, checkpoint)

    # plain steps go through DDP (its gradient hooks average over ranks); meta-gradients are averaged by hand
    net = model if comet.meta_learning else dist.wrap(model, device)
    for epoch in tqdm(range(start_epoch, config.epochs), desc="epochs", disable=not (progress and dist.is_main)):
        start = time.perf_counter()
        if (
            comet.confidence_weighting
            and epoch >= comet.warmup_epochs
            and (epoch - comet.warmup_epochs) % comet.reweight_every == 0
        ):
            scores = scores_of(train_idx)
            w, t = _weights_or_raise(scores, train_ids, comet.kappa, f"at epoch {epoch}")
            weights[train_on_device] = w.to(device)
            weight_frames.append(_weight_frame(epoch, train_ids, scores, w, final=False))
            reweightings.append({"epoch": epoch, "scores": scores.clone(), "weights": w.clone()})
            logger.debug("epoch %d: re-weighted, t=%.4g", epoch, t)

        model.train()
        step_losses = []
        n_skipped = 0
        lam, det = current_lambda()  # fixed for the epoch
        perm = torch.randperm(n_train, generator=generator)
        for step, chunk in enumerate(perm.split(config.batch_size)):
            batch = train_idx[chunk].to(device)
            part = dist.shard(batch)  # this rank's share of the batch (all of it in one process)
            if comet.meta_learning:
                if len(part):
                    support, query = _halves(part)
                    result = meta_gradients(
                        model, feats[support].float(), weights[support], feats[query].float(), weights[query],
                        alpha=comet.inner_lr, inner_steps=comet.inner_steps, l2_coef=lam, order=comet.meta_order,
                    )
                    loss, per_sample, meta_grads = result.meta_loss, result.support_losses, result.grads
                else:  # a batch with fewer images than ranks: this rank sits the step out
                    loss, per_sample = torch.zeros((), device=device), torch.zeros(0, device=device)
                    meta_grads = {name: torch.zeros_like(p) for name, p in params.items()}
                meta_grads = dist.average(meta_grads, weight=float(len(part) > 0))
            else:
                # data-parallel: R·Σ_{part} w L / Σ_{batch} w on each of the R ranks; DDP averages the ranks'
                # gradients, which gives the single-process gradient (comet_pipeline.training.distributed)
                weight_sum = weights[batch].sum() / dist.world_size if dist.active else None
                loss, per_sample = scl_loss(net, feats[part].float(), weights[part], lam, weight_sum=weight_sum)
            loss_value, train_loss = _step_losses(loss, per_sample, dist)
            if not (math.isfinite(loss_value) and math.isfinite(train_loss)):
                non_finite(f"non-finite training loss ({loss_value}) at epoch {epoch}, step {step}")
                n_skipped += 1
                continue
            optimizer.zero_grad(set_to_none=True)
            if comet.meta_learning:
                for name, p in params.items():
                    p.grad = meta_grads[name]
            else:
                loss.backward()
            grads = [p.grad for p in params.values() if p.grad is not None]
            if grads and not bool(torch.stack([torch.isfinite(g).all() for g in grads]).all()):
                optimizer.zero_grad(set_to_none=True)
                non_finite(f"non-finite gradient at epoch {epoch}, step {step}")
                n_skipped += 1
                continue
            step_losses.append(train_loss)
            optimizer.step()

        _check_finite_model(model, f"after epoch {epoch}")
        train_w = weights[train_on_device]
        row = {
            "epoch": epoch,
            "train_loss": float(np.mean(step_losses)) if step_losses else float("nan"),
            "val_loss": mean_loss(val_idx),
            "lambda": lam,
            "det_sigma": det,
            "n_weighted": int((train_w < 1).sum()),
            "mean_weight": float(train_w.mean()),
            "n_skipped": n_skipped,
            "seconds": time.perf_counter() - start,
        }
        history.append(row)
        if comet.covariance_regularization:
            if math.isfinite(row["train_loss"]) and math.isfinite(row["val_loss"]):
                window.append(row["train_loss"], row["val_loss"])
            elif config.on_nonfinite == "raise":
                raise FloatingPointError(
                    f"non-finite epoch losses (train {row['train_loss']}, validation {row['val_loss']}) at epoch {epoch} "
                    "(TrainConfig.on_nonfinite='skip' leaves them out of Σ)"
                )
            else:
                logger.warning("epoch %d: non-finite losses left out of Σ (on_nonfinite='skip')", epoch)
        if n_skipped:
            logger.warning("epoch %d: skipped %d of %d batches with non-finite values", epoch + 1, n_skipped, step + 1)
        if (epoch + 1) % config.log_every == 0 or epoch + 1 == config.epochs:
            logger.info(
                "epoch %d/%d train_loss=%.5g val_loss=%.5g lambda=%.3g det_sigma=%.3g n_weighted=%d (%.1fs)",
                epoch + 1, config.epochs, row["train_loss"], row["val_loss"],
                lam, det, row["n_weighted"], row["seconds"],
            )
        if checkpoint is not None:
            save_checkpoint(epoch + 1)

    model.eval()
    _check_finite_model(model, "after training")
    all_scores = scores_of(torch.arange(n))
    final_w = (
        _weights_or_raise(all_scores, ids, comet.kappa, "after training")[0]
        if comet.confidence_weighting
        else torch.ones(n)
    )
    weight_frames.append(_weight_frame(config.epochs, ids, all_scores, final_w, final=True))
    scores_np = all_scores.numpy()
    return TrainResult(
        model=model,
        history=pd.DataFrame(history, columns=list(HISTORY_COLUMNS)),
        weights=pd.concat(weight_frames, ignore_index=True),
        final_weights=pd.Series(
            final_w.numpy().astype(np.float64), index=pd.Index(ids, name="sample_id"), name="weight"
        ),
        train_ids=train_ids,
        val_ids=val_ids,
        train_scores=scores_np[train_idx.numpy()],
        val_scores=scores_np[val_idx.numpy()],
    )
