"""Typed, validated parameters.

Each parameter group of ``conf/base/parameters_*.yml`` maps onto a dataclass.
``parse`` reports *every* problem of a group at once (unknown keys, wrong
types, out-of-range values) in a single :class:`ConfigError`, naming each key
and what was expected, so that a bad ``--params`` override fails before any
work starts.
"""

from __future__ import annotations

import dataclasses
import math
import os
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


#: ``dataclasses.field(metadata=PROJECT_PATH)`` marks a path that, when relative, must stay inside the project
PROJECT_PATH: dict[str, bool] = {"project_path": True}


def project_path_problem(value: str, key: str) -> str | None:
    """Why ``value`` (the parameter ``key``) is not an acceptable path, or None.

    A relative path is resolved against the current working directory (the project
    root in a Kedro run) and must not leave it through ``..``; absolute paths are
    taken as given (the user named them explicitly). The check is lexical: a
    symbolic link inside the project may still point elsewhere.
    """
    if not value.strip():
        return f"{key}: got an empty path; expected a folder path"
    if os.path.isabs(value):
        return None
    cwd = os.path.abspath(os.getcwd())
    target = os.path.normpath(os.path.join(cwd, value))
    if os.path.commonpath([cwd, target]) != cwd:
        return (
            f"{key}: {value!r} leads outside the project directory {cwd} (resolves to {target}); "
            "expected a relative path inside the project, or an absolute path"
        )
    return None


def _prefixed(name: str, problem: str) -> str:
    """``problem`` of a field check, qualified with the group ``name`` unless it already is."""
    return problem if problem.startswith((f"{name}.", f"{name}:", f"{name}=")) else f"{name}.{problem}"


def collect(cls: type[T], values: Mapping[str, Any] | None, name: str, problems: list[str]) -> T | None:
    """Build ``cls`` from ``values``; append every problem to ``problems`` (prefixed with ``name``).

    Unknown keys, wrong types and paths leaving the project (fields marked with
    :data:`PROJECT_PATH`) are found here; value checks of ``cls.__post_init__``
    (a :class:`ConfigError` listing each of its problems) are reported too — also
    when other keys have the wrong type: the class is then built from the
    well-typed values only, so that one run reports every bad key.
    """
    if values is not None and not isinstance(values, Mapping):
        problems.append(f"{name}: got {values!r}, expected a mapping of parameters")
        return None
    values = dict(values or {})
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    before = len(problems)
    for key in sorted(set(values) - set(fields)):
        problems.append(f"{name}.{key}: unknown key; expected one of {sorted(fields)}")
    good = {}
    for key in sorted(set(values) & set(fields)):
        value = values[key]
        if not _check_type(value, hints[key]):
            problems.append(f"{name}.{key}: got {value!r}, expected {_expected(hints[key])}")
            continue
        if fields[key].metadata.get("project_path") and isinstance(value, str):
            problem = project_path_problem(value, f"{name}.{key}")
            if problem:
                problems.append(problem)
                continue
        good[key] = value
    kwargs = {k: tuple(v) if isinstance(v, list) and typing.get_origin(hints[k]) is tuple else v for k, v in good.items()}
    try:
        result = cls(**kwargs)
    except ConfigError as err:
        problems.extend(_prefixed(name, p) for p in err.problems)
        return None
    except (ValueError, TypeError) as err:
        problems.append(f"{name}: {err}")
        return None
    return result if len(problems) == before else None


def parse(cls: type[T], values: Mapping[str, Any] | None, name: str) -> T:
    """Build ``cls`` from ``values`` or raise :class:`ConfigError` listing every problem."""
    problems: list[str] = []
    result = collect(cls, values, name, problems)
    if problems:
        raise ConfigError(problems)
    assert result is not None
    return result


def require(condition: bool, message: str) -> None:
    """Raise ``ValueError(message)`` unless ``condition`` (for ``__post_init__`` checks).

    Stops at the first failed check; :func:`check_all` reports every failed check at once.
    """
    if not condition:
        raise ValueError(message)


def check_all(*checks: tuple[bool, str], problems: list[str] | None = None) -> None:
    """Raise one :class:`ConfigError` listing the message of every failed ``(condition, message)``.

    Messages name the key relative to its group (``"ratio=1.5: expected ..."``);
    :func:`collect` prefixes them with the group name. ``problems`` are further
    messages (e.g. of nested groups) reported with them.
    """
    failed = [*(problems or []), *(message for ok, message in checks if not ok)]
    if failed:
        raise ConfigError(failed)


@dataclasses.dataclass(frozen=True)
class BuiltinDataParams:
    """Size and seed of the built-in generated dataset (``data.builtin``)."""

    n_train: int = 40
    n_test_good: int = 12
    n_test_defect_per_type: int = 5
    image_size: int = 224
    seed: int = 0

    def __post_init__(self) -> None:
        check_all(
            (self.n_train >= 4, f"n_train={self.n_train}: expected >= 4"),
            (self.n_test_good >= 1, f"n_test_good={self.n_test_good}: expected >= 1"),
            (self.n_test_defect_per_type >= 1, f"n_test_defect_per_type={self.n_test_defect_per_type}: expected >= 1"),
            (self.image_size >= 32, f"image_size={self.image_size}: expected >= 32"),
            (self.seed >= 0, f"seed={self.seed}: expected >= 0"),
        )


@dataclasses.dataclass(frozen=True)
class DataParams:
    """Where the images come from (``data``)."""

    source: typing.Literal["builtin", "folder"] = "builtin"
    root: str = dataclasses.field(default="data/01_raw/builtin", metadata=PROJECT_PATH)
    layout: typing.Literal["mvtec", "ksdd2"] = "mvtec"
    categories: tuple[str, ...] = ("brick", "grass", "gravel", "widget")
    on_error: typing.Literal["fail", "skip"] = "fail"
    builtin: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        nested: list[str] = []
        if self.source == "builtin":
            collect(BuiltinDataParams, self.builtin, "builtin", nested)
        bad_names = [c for c in self.categories if not c.strip() or c in (".", "..") or "/" in c or "\\" in c]
        check_all(
            (len(self.categories) > 0, "categories: expected at least one category"),
            (len(set(self.categories)) == len(self.categories), f"categories={list(self.categories)}: expected no duplicates"),
            (not bad_names, f"categories: {bad_names} are not folder names; expected plain names without '/' or '..'"),
            problems=nested,
        )


@dataclasses.dataclass(frozen=True)
class ContaminationParams:
    """How many defective images are moved into train (``contamination``)."""

    ratio: float = 0.1
    overlap: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        check_all(
            (0.0 <= self.ratio <= 1.0, f"ratio={self.ratio}: expected 0 <= ratio <= 1"),
            (self.seed >= 0, f"seed={self.seed}: expected >= 0"),
        )


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
    cache_dir: str = dataclasses.field(default="data/04_feature/cache", metadata=PROJECT_PATH)
    device: typing.Literal["auto", "cpu", "cuda"] = "auto"

    def __post_init__(self) -> None:
        from comet_pipeline.features.backbones import ARCHITECTURES  # lazy: imports torch

        check_all(
            (self.backbone in ARCHITECTURES, f"backbone={self.backbone!r}: expected one of {sorted(ARCHITECTURES)}"),
            (len(self.layers) > 0, "layers: expected at least one layer name"),
            (self.resolution >= 32, f"resolution={self.resolution}: expected >= 32"),
            (self.batch_size >= 1, f"batch_size={self.batch_size}: expected >= 1"),
            (self.num_workers >= 0, f"num_workers={self.num_workers}: expected >= 0"),
            (
                len(self.rotations) > 0 and all(r % 90 == 0 for r in self.rotations),
                f"rotations={list(self.rotations)}: expected a non-empty list of multiples of 90",
            ),
        )


@dataclasses.dataclass(frozen=True)
class ThresholdParams:
    """Label-free decision threshold from held-out *training* scores (``evaluation.threshold``)."""

    method: typing.Literal["iqr", "quantile"] = "iqr"
    kappa: float = 1.5
    quantile: float = 0.95

    def __post_init__(self) -> None:
        check_all(
            (math.isfinite(self.kappa) and self.kappa >= 0, f"kappa={self.kappa}: expected a finite number >= 0"),
            (0 < self.quantile < 1, f"quantile={self.quantile}: expected in (0, 1)"),
        )


@dataclasses.dataclass(frozen=True)
class EvaluationParams:
    """Evaluation settings (``evaluation``)."""

    map_size: int = 112
    threshold: dict = dataclasses.field(default_factory=dict)
    overlays_per_category: int = 4

    def __post_init__(self) -> None:
        nested: list[str] = []
        collect(ThresholdParams, self.threshold, "threshold", nested)
        check_all(
            (self.map_size >= 8, f"map_size={self.map_size}: expected >= 8"),
            (self.overlays_per_category >= 0, f"overlays_per_category={self.overlays_per_category}: expected >= 0"),
            problems=nested,
        )
