"""Blob images with known counts (overlaps, border contact)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.ndimage as ndi

from tools.errors import InputError
from tools.synthetic._checks import check_int, check_number, check_range, check_seed, check_shape
from tools.synthetic._shapes import _CANDIDATES, _ROUNDS, _rasterize, _Shapes
from tools.types import ImageMeta


@dataclass(frozen=True, eq=False)
class SyntheticBlobs:
    """Blob image for counting, with the true count and geometry.

    Attributes
    ----------
    image : np.ndarray
        ``float32`` image, background about 0.05, blobs 0.6-1.0 before noise.
    labels : np.ndarray
        ``int32`` labels; label ``k`` is blob ``k - 1`` of ``centers``.
    count : int
        Number of blobs, including those cut by the image border.
    centers : np.ndarray
        ``(count, 2)`` float array of blob centres ``(y, x)`` in pixels.
    radii : np.ndarray
        ``(count,)`` blob radii in pixels.
    touches_border : np.ndarray
        ``(count,)`` bool, True where the blob's disk extends beyond the image (cut by the
        border); the true count of an "ignore border objects" method is
        ``(~touches_border).sum()``.
    meta : ImageMeta
        Axes ``"YX"``, uncalibrated.
    """

    image: np.ndarray
    labels: np.ndarray
    count: int
    centers: np.ndarray
    radii: np.ndarray
    touches_border: np.ndarray
    meta: ImageMeta


def blobs(
    n: int,
    *,
    shape: tuple[int, int] = (256, 256),
    radius: tuple[float, float] = (3.0, 8.0),
    overlap: bool = False,
    border: bool = False,
    noise: float = 0.05,
    seed: int = 0,
) -> SyntheticBlobs:
    """Round bright blobs with a known count, for counting benchmarks.

    Parameters
    ----------
    n : int
        Number of blobs, 0-100 (0 gives an empty image). All ``n`` are visible and counted,
        including blobs cut by the border or overlapping others.
    shape : tuple of int
        Image size ``(rows, cols)``.
    radius : (float, float)
        Range of blob radii in pixels, drawn uniformly; at least 2.
    overlap : bool
        False: every blob is at least 3 px (edge to edge) from every other, so thresholding
        separates them. True: about 30% of the blobs are placed overlapping a neighbour
        (centre distance 0.6-0.95 of the summed radii); the count is still ``n``.
    border : bool
        False: all blobs lie fully inside, at least 2 px from the edge. True: about 25% of
        the blobs (at least one) are cut by the image border, their centres inside at 20-70%
        of a radius from the edge; see ``touches_border``.
    noise : float
        Standard deviation of additive Gaussian noise (blob amplitudes are 0.6-1.0).
    seed : int
        Seed of the random generator.

    Returns
    -------
    SyntheticBlobs
        ``image`` (float32: background 0.05, soft-edged disks of amplitude 0.6-1.0 blurred
        with sigma 1 px, plus noise), ``labels``, ``count == n``, ``centers``, ``radii`` and
        ``touches_border``.
    """
    shape = check_shape(shape, (2,))
    n = check_int("n", n, 0, 100)
    radius = check_range("radius", radius, 2.0, min(shape) / 4)
    if not isinstance(overlap, bool) or not isinstance(border, bool):
        raise InputError("overlap and border must be True or False")
    noise = check_number("noise", noise, 0.0, 1.0)
    seed = check_seed(seed)
    gap = 3.0
    mean_r = 0.5 * sum(radius)
    # Random packing of disks jams around 50% coverage; refuse early with a clear message.
    if n * np.pi * (mean_r + gap / 2) ** 2 > 0.45 * math.prod(shape):
        raise InputError(
            f"{n} blobs of radius {radius[0]:g}-{radius[1]:g} px do not fit in {shape}; use a "
            "larger shape, smaller radius or fewer blobs"
        )
    rng = np.random.default_rng(seed)
    radii = rng.uniform(*radius, n)
    kind = np.zeros(n, np.int8)  # 0 free, 1 border, 2 overlap
    order = rng.permutation(n)
    n_border = max(1, round(0.25 * n)) if border and n > 0 else 0
    n_overlap = max(1, round(0.3 * n)) if overlap and n > 1 else 0
    kind[order[:n_border]] = 1
    kind[order[n_border : n_border + n_overlap]] = 2
    size = np.asarray(shape, float) - 1
    centers = np.zeros((n, 2))
    for i in range(n):
        r = radii[i]
        margin = r + 2.0
        lo_hi = np.stack([np.full(2, margin), size - margin], -1)
        placed = False
        for attempt in range(_ROUNDS * 4):
            k = kind[i] if not (kind[i] == 2 and (i == 0 or attempt >= _ROUNDS * 2)) else 0
            cand = rng.uniform(lo_hi[:, 0], lo_hi[:, 1], (_CANDIDATES, 2))
            if k == 1:
                axis = rng.integers(0, 2, _CANDIDATES)
                depth = rng.uniform(0.2, 0.7, _CANDIDATES) * r
                far = rng.random(_CANDIDATES) < 0.5
                rows = np.arange(_CANDIDATES)
                cand[rows, axis] = np.where(far, size[axis] - depth, depth)
            elif k == 2:
                partner = rng.integers(0, i, _CANDIDATES)
                t = rng.uniform(0, 2 * np.pi, _CANDIDATES)
                dist = rng.uniform(0.6, 0.95, _CANDIDATES) * (r + radii[partner])
                cand = centers[partner] + dist[:, None] * np.stack([np.sin(t), np.cos(t)], -1)
            ok = (
                np.all((cand >= margin) & (cand <= size - margin), axis=1)
                if k == 2
                else (np.ones(_CANDIDATES, bool))
            )
            if i > 0:
                dist = np.linalg.norm(cand[:, None] - centers[None, :i], axis=-1)
                need = 0.6 * (r + radii[:i]) if k == 2 else r + radii[:i] + gap
                # A free blob keeps its gap even from overlapping ones placed earlier.
                ok &= np.all(dist >= need, axis=1)
            good = np.flatnonzero(ok)
            if good.size:
                centers[i] = cand[good[0]]
                placed = True
                break
        if not placed:
            raise InputError(
                f"could place only {i} of {n} blobs in {shape}; use a larger shape, smaller "
                "radius or fewer blobs"
            )
    s = _Shapes(
        centers,
        np.broadcast_to(np.eye(2), (n, 2, 2)).copy(),
        np.stack([radii, radii], -1),
        np.zeros((n, 1, 2)),
        np.zeros((n, 1)),
        np.zeros((n, 1)),
    )
    labels, _, kept = _rasterize(shape, np.ones(2), s)
    if kept.size != n:  # cannot happen: a blob always owns its centre pixel
        raise AssertionError("a blob vanished while drawing")
    amp = np.concatenate([[0.0], rng.uniform(0.6, 1.0, n)]).astype(np.float32)
    image = ndi.gaussian_filter(amp[labels], 1.0) + np.float32(0.05)
    if noise > 0:
        image += rng.normal(0.0, noise, shape).astype(np.float32)
    touches = np.any((centers - radii[:, None] < 0) | (centers + radii[:, None] > size), axis=1)
    meta = ImageMeta(
        axes="YX",
        source=f"synthetic: blobs(n={n}, seed={seed})",
        extra={"generator": "blobs", "seed": seed, "count": n},
    )
    return SyntheticBlobs(image.astype(np.float32), labels, n, centers, radii, touches, meta)
