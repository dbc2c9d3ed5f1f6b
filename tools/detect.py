"""Spot detection: find small bright blobs (vesicles, foci, nuclei centres) as a table of points.

Positions are refined below the pixel by fitting a parabola to the detector's response along
each axis through the best pixel and its two neighbours. :func:`match_points` pairs detections
with ground-truth points one to one (Hungarian assignment) for precision, recall and F1 at a
distance cutoff.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

import numpy as np
import pandas as pd
from annotated_types import Ge, Gt
from scipy import ndimage as ndi
from scipy.optimize import linear_sum_assignment
from scipy.spatial import cKDTree

from tools.checks import check_image
from tools.choices import record_choice
from tools.errors import InputError
from tools.measure import unit_suffix
from tools.registry import tool
from tools.scale import describe, radius_from_image
from tools.segment import axis_sigmas, check_sigma
from tools.types import Image, PixelSize, Table

_DOG_RATIO = 1.6  # width ratio of the two Gaussians of a difference of Gaussians
_SCALE_STEP = 1.25  # ratio between successive scales in a multi-scale search


def _scales(sigma: float, max_sigma: float | None) -> np.ndarray:
    if max_sigma is None or max_sigma <= sigma:
        return np.array([sigma])
    count = 2 + int(math.log(max_sigma / sigma) / math.log(_SCALE_STEP))
    return np.geomspace(sigma, max_sigma, count)


def _response(
    data: np.ndarray, method: str, sigma: float, pixel_size: PixelSize | None
) -> np.ndarray:
    """Scale-normalised detector response: positive and largest at the centre of a bright spot."""
    sigmas = axis_sigmas(sigma, data.ndim, pixel_size)
    if method == "log":
        return -(sigma**2) * ndi.gaussian_laplace(data, sigmas, mode="nearest")
    if method == "dog":
        wide = tuple(s * _DOG_RATIO for s in sigmas)
        narrow = ndi.gaussian_filter(data, sigmas, mode="nearest")
        return (narrow - ndi.gaussian_filter(data, wide, mode="nearest")) / (_DOG_RATIO - 1)
    smoothed = ndi.gaussian_filter(data, sigmas, mode="nearest")
    return smoothed - np.median(smoothed)


def _noise_floor(response: np.ndarray) -> float:
    """Five robust standard deviations of a response map: weaker maxima are noise."""
    sample = response.ravel()[:: max(1, response.size // 200_000)]
    median = float(np.median(sample))
    return median + 5 * 1.4826 * float(np.median(np.abs(sample - median)))


def _parabola_offset(minus: np.ndarray, centre: np.ndarray, plus: np.ndarray) -> np.ndarray:
    """Offset (-0.5..0.5) of the vertex of the parabola through three equally spaced samples."""
    curvature = minus - 2 * centre + plus
    with np.errstate(divide="ignore", invalid="ignore"):
        offset = np.where(curvature < 0, 0.5 * (minus - plus) / curvature, 0.0)
    return np.clip(np.nan_to_num(offset), -0.5, 0.5)


def _suppress_close(
    found: np.ndarray, strength: np.ndarray, min_distance: float
) -> tuple[np.ndarray, np.ndarray]:
    """Keep the strongest of maxima closer than ``min_distance`` (plateaus, several scales)."""
    order = np.argsort(-strength, kind="stable")
    found, strength = found[order], strength[order]
    if len(found) < 2:
        return found, strength
    tree = cKDTree(found[:, 1:])
    kept = np.ones(len(found), dtype=bool)
    for i, j in sorted(tree.query_pairs(min_distance - 1e-9)):
        if kept[i]:
            kept[j] = False  # j is weaker (sorted), and i survives
    return found[kept], strength[kept]


@tool(category="detect", output_names=("spots",))
def detect_spots(
    image: Image,
    method: Literal["log", "dog", "local_max"] = "log",
    sigma: Annotated[float, Gt(0)] | None = None,
    max_sigma: Annotated[float, Gt(0)] | None = None,
    threshold: float | None = None,
    min_distance: Annotated[int, Ge(1)] | None = None,
    subpixel: bool = True,
    pixel_size: PixelSize | None = None,
) -> Table:
    """Detect bright spots and return their positions, sizes and intensities as a table.

    "log" (Laplacian of Gaussian) and "dog" (difference of Gaussians) respond to blobs of a
    given size; "local_max" takes maxima of the smoothed image. Giving ``max_sigma`` searches
    sizes from ``sigma`` to ``max_sigma`` and reports each spot's best size. Without a
    threshold, one is chosen from the data (Otsu's split of the maxima' strengths, never below
    five noise standard deviations).

    Parameters
    ----------
    image : Image
        Fluorescence image, 2D or 3D, bright spots on a dark background.
    method : str
        Detector: "log", "dog" or "local_max".
    sigma : float, optional
        Spot size as a Gaussian width in pixels, about radius / 1.4 (2D) or radius / 1.7 (3D);
        the smallest size searched when ``max_sigma`` is given. When both are left out, the
        range of sizes is taken from the spots' radii estimated from the image
        (:func:`tools.scale.estimate_object_scale`); 2 if none can be measured.
    max_sigma : float, optional
        Largest spot size searched, in pixels; one size only when left out (unless sigma is
        left out too, see above).
    threshold : float, optional
        Smallest detector response kept (the ``response`` column, in image intensity units);
        automatic when left out.
    min_distance : int, optional
        Smallest distance between two spots, in pixels; when left out, half the radius of the
        small spots estimated from the image (at least 1; 3 if none can be measured).
    subpixel : bool
        Refine positions below the pixel by a parabola fit.

    Returns
    -------
    Table
        One row per spot, strongest first: ``y``, ``x`` (and ``z`` in 3D) in pixels, ``sigma``
        and ``radius`` in pixels, ``response``, ``intensity`` (image value at the spot), and
        ``y_um``-style columns in physical units when the pixel size is known.

    References
    ----------
    .. [1] T. Lindeberg, "Feature detection with automatic scale selection", International
       Journal of Computer Vision 30(2):79-116, 1998. doi:10.1023/A:1008045108935
    .. [2] D. G. Lowe, "Distinctive image features from scale-invariant keypoints",
       International Journal of Computer Vision 60(2):91-110, 2004 (difference of Gaussians).

    Examples
    --------
    >>> from tools.synthetic import blobs
    >>> b = blobs(25, radius=(2.5, 3.5), seed=5)
    >>> len(detect_spots(b.image))  # the range of sizes is estimated from the image
    25
    """
    data = check_image(image)
    if sigma is not None:
        sigma = check_sigma(sigma, "sigma", allow_zero=False)
    if max_sigma is not None:
        max_sigma = check_sigma(max_sigma, "max_sigma", allow_zero=False)
        if sigma is not None and max_sigma < sigma:
            raise InputError(f"max_sigma ({max_sigma}) is smaller than sigma ({sigma})")
    if method not in ("log", "dog", "local_max"):
        raise InputError(f"method must be 'log', 'dog' or 'local_max', got {method!r}")
    if min_distance is not None and min_distance < 1:
        raise InputError(f"min_distance must be >= 1 pixel, got {min_distance}")
    if threshold is not None and not np.isfinite(threshold):
        raise InputError(f"threshold must be a finite number, got {threshold}")
    if sigma is None or min_distance is None:
        scale = radius_from_image(data, pixel_size)
        why = describe(scale)
        root = math.sqrt(data.ndim)
        if sigma is None:
            if scale is None:
                sigma = 2.0
            else:
                sigma = round(max(0.8, 0.8 * scale["radius_low"] / root), 2)
                if max_sigma is None:
                    max_sigma = round(max(sigma, 1.25 * scale["radius_high"] / root), 2)
                    record_choice("max_sigma", max_sigma, why)
                elif max_sigma < sigma:
                    sigma = max_sigma
            record_choice("sigma", sigma, why)
        if min_distance is None:
            min_distance = 3 if scale is None else max(1, round(0.5 * scale["radius_low"]))
            record_choice("min_distance", min_distance, why)
    scales = _scales(sigma, max_sigma)
    stack = np.stack([_response(data, method, s, pixel_size) for s in scales])
    size = (3 if len(scales) > 1 else 1,) + (2 * int(min_distance) + 1,) * data.ndim
    peaks = (stack == ndi.maximum_filter(stack, size=size, mode="nearest")) & (stack > 0)
    found = np.argwhere(peaks)
    strength = stack[tuple(found.T)]
    if threshold is None:
        floor = np.array([_noise_floor(layer) for layer in stack])[found[:, 0]]
        strong = strength > floor
        cut = 0.0
        if np.unique(strength[strong]).size > 2:
            from skimage.filters import threshold_otsu

            cut = float(threshold_otsu(strength[strong]))
            # Otsu splits even a single population; keep it only when the two groups differ.
            high, low = strength[strong & (strength > cut)], strength[strong & (strength <= cut)]
            if low.size and high.size and np.median(high) < 2 * np.median(low):
                cut = 0.0
        keep = strong & (strength > cut)
    else:
        keep = strength > float(threshold)
    found, strength = found[keep], strength[keep]
    found, strength = _suppress_close(found, strength, min_distance)
    position = found[:, 1:].astype(np.float64)
    scale = scales[found[:, 0]]
    if subpixel and len(found):
        upper = np.array(data.shape) - 1
        for axis in range(data.ndim):
            minus, plus = found.copy(), found.copy()
            minus[:, axis + 1] = np.maximum(found[:, axis + 1] - 1, 0)
            plus[:, axis + 1] = np.minimum(found[:, axis + 1] + 1, upper[axis])
            position[:, axis] += _parabola_offset(
                stack[tuple(minus.T)], strength, stack[tuple(plus.T)]
            )
        if len(scales) > 1:
            inner = (found[:, 0] > 0) & (found[:, 0] < len(scales) - 1)
            lower, higher = found.copy(), found.copy()
            lower[inner, 0] -= 1
            higher[inner, 0] += 1
            step = _parabola_offset(stack[tuple(lower.T)], strength, stack[tuple(higher.T)])
            scale = scale * np.where(inner, _SCALE_STEP ** step, 1.0)
    intensity = ndi.map_coordinates(data, position.T, order=1, mode="nearest") if len(
        found
    ) else np.zeros(0)
    axes = "zyx"[-data.ndim:]
    table = pd.DataFrame({axis: position[:, i] for i, axis in enumerate(axes)})
    table["sigma"] = scale
    table["radius"] = scale * math.sqrt(data.ndim)
    table["response"] = strength
    table["intensity"] = intensity
    if pixel_size is not None and pixel_size.calibrated and len(pixel_size.spacing) == data.ndim:
        unit = unit_suffix(pixel_size.unit)
        for i, axis in enumerate(axes):
            table[f"{axis}_{unit}"] = position[:, i] * pixel_size.spacing[i]
    table = table.sort_values("response", ascending=False, kind="stable").reset_index(drop=True)
    table.insert(0, "spot", np.arange(1, len(table) + 1))
    return table


def match_points(
    predicted: np.ndarray, true: np.ndarray, max_distance: float
) -> dict[str, float]:
    """Pair predicted and true points one to one and score the detection.

    Pairs are chosen by the Hungarian algorithm to minimise the summed distance among pairs
    closer than ``max_distance``; every other point is a false positive or a false negative.

    Parameters
    ----------
    predicted, true : ndarray
        ``(n, d)`` and ``(m, d)`` point coordinates in the same units.
    max_distance : float
        Largest distance at which a prediction counts as finding a true point.

    Returns
    -------
    dict
        ``tp``, ``fp``, ``fn``, ``precision``, ``recall``, ``f1`` and ``mean_distance`` (of the
        matched pairs; NaN if none).

    References
    ----------
    .. [1] H. W. Kuhn, "The Hungarian method for the assignment problem", Naval Research
       Logistics Quarterly 2:83-97, 1955.

    Examples
    --------
    >>> import numpy as np
    >>> match_points(np.array([[0.0, 0.0], [5.0, 5.0]]), np.array([[0.5, 0.0]]), 2.0)["f1"]
    0.6666666666666666
    """
    predicted = np.asarray(predicted, dtype=np.float64).reshape(-1, np.shape(true)[-1])
    true = np.asarray(true, dtype=np.float64)
    if not max_distance > 0:
        raise InputError(f"max_distance must be > 0, got {max_distance}")
    tp, distances = 0, np.zeros(0)
    if len(predicted) and len(true):
        cost = np.linalg.norm(predicted[:, None, :] - true[None, :, :], axis=-1)
        # Pairs beyond the cutoff get a cost no real pairing can beat, so they are never chosen
        # over a valid one, and are dropped after the assignment.
        penalty = np.where(cost <= max_distance, cost, 1e6 + cost)
        rows, cols = linear_sum_assignment(penalty)
        valid = cost[rows, cols] <= max_distance
        tp, distances = int(valid.sum()), cost[rows, cols][valid]
    fp, fn = len(predicted) - tp, len(true) - tp
    precision = tp / len(predicted) if len(predicted) else float(len(true) == 0)
    recall = tp / len(true) if len(true) else float(len(predicted) == 0)
    f1 = 2 * tp / (2 * tp + fp + fn) if (tp + fp + fn) else 1.0
    return {
        "tp": tp, "fp": fp, "fn": fn, "precision": precision, "recall": recall, "f1": f1,
        "mean_distance": float(distances.mean()) if tp else float("nan"),
    }
