"""Input checks shared by the tools: each raises InputError with a message a user can act on."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tools.errors import InputError


def check_image(
    image: np.ndarray, *, name: str = "image", ndim: Sequence[int] = (2, 3)
) -> np.ndarray:
    """Check that ``image`` is a non-empty, finite numeric array of an accepted dimensionality.

    Returns the array as a float32 (or float64 if it already is) for the tool to work on.
    """
    if not isinstance(image, np.ndarray):
        raise InputError(f"{name} must be a numpy array, got {type(image).__name__}")
    if image.ndim not in ndim:
        accepted = " or ".join(f"{n}D" for n in ndim)
        raise InputError(
            f"{name} must be {accepted}, got {image.ndim}D with shape {image.shape}"
            + ("; pick one channel or time point first" if image.ndim > max(ndim) else "")
        )
    if image.size == 0:
        raise InputError(f"{name} is empty (shape {image.shape})")
    if image.dtype.kind not in "biuf":
        raise InputError(f"{name} must be numeric, got dtype {image.dtype}")
    out = image.astype(np.float64 if image.dtype == np.float64 else np.float32, copy=False)
    if not np.isfinite(out).all():
        raise InputError(f"{name} contains NaN or infinite values; replace or mask them first")
    return out


def check_labels(labels: np.ndarray, *, name: str = "labels", ndim: Sequence[int] = (2, 3)) -> None:
    """Check that ``labels`` is a non-empty integer array of an accepted dimensionality."""
    if not isinstance(labels, np.ndarray):
        raise InputError(f"{name} must be a numpy array, got {type(labels).__name__}")
    if labels.ndim not in ndim:
        accepted = " or ".join(f"{n}D" for n in ndim)
        raise InputError(f"{name} must be {accepted}, got {labels.ndim}D with shape {labels.shape}")
    if labels.size == 0:
        raise InputError(f"{name} is empty (shape {labels.shape})")
    if not np.issubdtype(labels.dtype, np.integer):
        raise InputError(f"{name} must be an integer label image, got dtype {labels.dtype}")
    if labels.min() < 0:
        raise InputError(f"{name} has negative values; labels are 0 (background) or positive")


def check_same_shape(a: np.ndarray, b: np.ndarray, *, names: tuple[str, str]) -> None:
    """Refuse two arrays that must overlay pixel for pixel but have different shapes."""
    if a.shape != b.shape:
        raise InputError(
            f"{names[0]} has shape {a.shape} but {names[1]} has shape {b.shape}; "
            "they must be the same size"
        )


def check_spacing(spacing: Sequence[float], ndim: int) -> tuple[float, ...]:
    """Check a per-axis spacing for an ``ndim`` array and return it as a tuple."""
    values = tuple(float(s) for s in spacing)
    if len(values) != ndim:
        raise InputError(f"spacing has {len(values)} values but the image has {ndim} axes")
    if any(not np.isfinite(s) or s <= 0 for s in values):
        raise InputError(f"spacing must be positive, got {values}")
    return values
