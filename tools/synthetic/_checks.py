"""Input checks shared by the synthetic-data generators."""

from __future__ import annotations

import math

import numpy as np

from tools.errors import InputError


def check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise InputError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def check_shape(
    shape: tuple[int, ...], ndims: tuple[int, ...], minimum: int = 16
) -> tuple[int, ...]:
    try:
        out = tuple(int(s) for s in shape)
    except (TypeError, ValueError):
        raise InputError(f"shape must be a tuple of integers, got {shape!r}") from None
    if len(out) not in ndims or any(s != v for s, v in zip(out, shape, strict=True)):
        want = " or ".join(f"{d}" for d in ndims)
        raise InputError(f"shape must be {want} integers, got {shape!r}")
    if any(s < minimum for s in out):
        raise InputError(f"every shape dimension must be at least {minimum}, got {out}")
    if math.prod(out) > 2**26:
        raise InputError(f"shape {out} is too large for synthetic data (max 67 M pixels)")
    return out


def check_number(name: str, value: float, lo: float, hi: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise InputError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not (lo <= value <= hi) or not math.isfinite(value):
        raise InputError(f"{name} must be in [{lo}, {hi}], got {value}")
    return value


def check_int(name: str, value: int, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise InputError(f"{name} must be an integer, got {value!r}")
    if not lo <= value <= hi:
        raise InputError(f"{name} must be in [{lo}, {hi}], got {value}")
    return int(value)


def check_range(
    name: str, value: tuple[float, float], lo: float, hi: float = math.inf
) -> tuple[float, float]:
    try:
        a, b = (float(v) for v in value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a (min, max) pair of numbers, got {value!r}") from None
    if not (lo <= a <= b <= hi):
        raise InputError(f"{name} must satisfy {lo} <= min <= max <= {hi}, got {value!r}")
    return a, b
