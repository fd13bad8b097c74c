"""Typed, validated parameters.

Each parameter group of ``conf/base/parameters_*.yml`` maps onto a dataclass.
``parse`` reports *every* problem of a group at once (unknown keys, wrong
types, out-of-range values) in a single :class:`ConfigError`, naming each key
and what was expected, so that a bad ``--params`` override fails before any
work starts.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """One or more parameters are invalid; the message lists each of them."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid parameters:\n  - " + "\n  - ".join(problems))


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _check_type(value: Any, tp: Any) -> bool:
    """True if ``value`` fits the (simple) annotation ``tp``; ints are accepted for floats."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_check_type(value, arg) for arg in typing.get_args(tp))
    if tp is type(None):
        return value is None
    if origin is typing.Literal:
        return value in typing.get_args(tp)
    if origin in (list, tuple):
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        return isinstance(value, (list, tuple)) and all(_check_type(v, args[0]) for v in value) if args else True
    if origin is dict or tp is dict:
        return isinstance(value, Mapping)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, tp)


def _expected(tp: Any) -> str:
    if typing.get_origin(tp) is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    args = typing.get_args(tp)
    return " or ".join(_type_name(a) for a in args) if args else _type_name(tp)


def collect(cls: type[T], values: Mapping[str, Any] | None, name: str, problems: list[str]) -> T | None:
    """Build ``cls`` from ``values``; append every problem to ``problems`` (prefixed with ``name``)."""
    values = dict(values or {})
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls) if f.init}
    before = len(problems)
    for key in sorted(set(values) - fields):
        problems.append(f"{name}.{key}: unknown key; expected one of {sorted(fields)}")
    for key in sorted(set(values) & fields):
        if not _check_type(values[key], hints[key]):
            problems.append(f"{name}.{key}: got {values[key]!r}, expected {_expected(hints[key])}")
    if len(problems) > before:
        return None
    kwargs = {k: tuple(v) if isinstance(v, list) and typing.get_origin(hints[k]) is tuple else v for k, v in values.items()}
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as err:
        problems.append(f"{name}: {err}")
        return None


def parse(cls: type[T], values: Mapping[str, Any] | None, name: str) -> T:
    """Build ``cls`` from ``values`` or raise :class:`ConfigError` listing every problem."""
    problems: list[str] = []
    result = collect(cls, values, name, problems)
    if problems:
        raise ConfigError(problems)
    assert result is not None
    return result


def require(condition: bool, message: str) -> None:
    """Raise ``ValueError(message)`` unless ``condition`` (for ``__post_init__`` checks)."""
    if not condition:
        raise ValueError(message)


@dataclasses.dataclass(frozen=True)
class BuiltinDataParams:
    """Size and seed of the built-in generated dataset (``data.builtin``)."""

    n_train: int = 40
    n_test_good: int = 12
    n_test_defect_per_type: int = 5
    image_size: int = 224
    seed: int = 0

    def __post_init__(self) -> None:
        require(self.n_train >= 4, f"data.builtin.n_train={self.n_train}: expected >= 4")
        require(self.n_test_good >= 1, f"data.builtin.n_test_good={self.n_test_good}: expected >= 1")
        require(self.n_test_defect_per_type >= 1, "data.builtin.n_test_defect_per_type: expected >= 1")
        require(self.image_size >= 32, f"data.builtin.image_size={self.image_size}: expected >= 32")


@dataclasses.dataclass(frozen=True)
class DataParams:
    """Where the images come from (``data``)."""

    source: typing.Literal["builtin", "folder"] = "builtin"
    root: str = "data/01_raw/builtin"
    layout: typing.Literal["mvtec", "ksdd2"] = "mvtec"
    categories: tuple[str, ...] = ("brick", "grass", "gravel", "widget")
    on_error: typing.Literal["fail", "skip"] = "fail"
    builtin: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        require(len(self.categories) > 0, "data.categories: expected at least one category")


@dataclasses.dataclass(frozen=True)
class ContaminationParams:
    """How many defective images are moved into train (``contamination``)."""

    ratio: float = 0.1
    overlap: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        require(0.0 <= self.ratio <= 1.0, f"contamination.ratio={self.ratio}: expected 0 <= ratio <= 1")


@dataclasses.dataclass(frozen=True)
class FeatureParams:
    """Backbone and feature cache (``features``)."""

    backbone: str = "mobilenet_v2"
    layers: tuple[str, ...] = ("features.6", "features.13")
    resolution: int = 224
    weights_path: str | None = None
    rotations: tuple[int, ...] = (0, 90, 180, 270)
    batch_size: int = 32
    num_workers: int = 0
    cache_dir: str = "data/04_feature/cache"
    device: typing.Literal["auto", "cpu", "cuda"] = "auto"

    def __post_init__(self) -> None:
        require(self.resolution >= 32, f"features.resolution={self.resolution}: expected >= 32")
        require(self.batch_size >= 1, f"features.batch_size={self.batch_size}: expected >= 1")
        require(self.num_workers >= 0, f"features.num_workers={self.num_workers}: expected >= 0")
        require(
            len(self.rotations) > 0 and all(r % 90 == 0 for r in self.rotations),
            f"features.rotations={list(self.rotations)}: expected a non-empty list of multiples of 90",
        )


@dataclasses.dataclass(frozen=True)
class ThresholdParams:
    """Label-free decision threshold from held-out *training* scores (``evaluation.threshold``)."""

    method: typing.Literal["iqr", "quantile"] = "iqr"
    kappa: float = 1.5
    quantile: float = 0.95

    def __post_init__(self) -> None:
        require(self.kappa >= 0, f"evaluation.threshold.kappa={self.kappa}: expected >= 0")
        require(0 < self.quantile < 1, f"evaluation.threshold.quantile={self.quantile}: expected in (0, 1)")


@dataclasses.dataclass(frozen=True)
class EvaluationParams:
    """Evaluation settings (``evaluation``)."""

    map_size: int = 112
    threshold: dict = dataclasses.field(default_factory=dict)
    overlays_per_category: int = 4

    def __post_init__(self) -> None:
        require(self.map_size >= 8, f"evaluation.map_size={self.map_size}: expected >= 8")
        require(self.overlays_per_category >= 0, "evaluation.overlays_per_category: expected >= 0")
