"""Synthetic microscopy data with exact ground truth.

Every generator is deterministic for a given ``seed`` and returns a small frozen dataclass that
holds the image, its ground truth and an :class:`~tools.types.ImageMeta`.

Conventions
-----------
* Intensity images are ``float32``, roughly in ``[0, 1]``: background about 0.05-0.2, the
  brightest objects about 0.8-1.0. Noise can push a few pixels slightly above 1; values are
  clipped at 0 from below, as a camera with its offset subtracted would report them.
* Label images are ``int32`` with 0 for background and consecutive labels ``1..N``.
* Objects are star-shaped (perturbed ellipses or ellipsoids). Where two objects overlap, each
  pixel belongs to the object whose scaled boundary distance is smallest, which splits a
  contact along a curved, Voronoi-like line: every pixel has exactly one label and every label
  is a single connected component.

The nuclei generators aim at looking like real fluorescence nuclei (stardist's
``test_image_nuclei_2d``): a StarDist model trained on plain uniform ellipses with Gaussian noise
is useless on real data, so brightness spread, texture, clumps, blur, uneven background and
Poisson-Gaussian noise are all simulated.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import scipy.ndimage as ndi
import tifffile

from tools.errors import InputError
from tools.types import ImageMeta

__all__ = [
    "CTCData",
    "NoisyPair",
    "SyntheticBlobs",
    "SyntheticNuclei",
    "Timelapse",
    "blobs",
    "noisy_clean_pair",
    "nuclei_2d",
    "nuclei_3d",
    "read_ctc",
    "timelapse",
    "write_ctc",
]

TRACK_COLUMNS = ("label", "begin", "end", "parent")

# Candidate positions tried at once per object; several rounds before giving up.
_CANDIDATES = 128
_ROUNDS = 6


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SyntheticNuclei:
    """Synthetic nuclei image with its instance labels.

    Attributes
    ----------
    image : np.ndarray
        ``float32`` fluorescence image, ``YX`` or ``ZYX``, roughly in ``[0, 1]``.
    labels : np.ndarray
        ``int32`` instance labels of the same shape, 0 background, ``1..N``; exactly the
        labelled nuclei visible in ``image`` (out-of-focus blobs are not labelled).
    meta : ImageMeta
        Axes, physical pixel size and generator settings.
    """

    image: np.ndarray
    labels: np.ndarray
    meta: ImageMeta

    @property
    def n_objects(self) -> int:
        """Number of labelled nuclei."""
        return int(self.labels.max())


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


@dataclass(frozen=True, eq=False)
class NoisyPair:
    """A clean image and a noisy observation of it.

    Attributes
    ----------
    clean : np.ndarray
        ``float32`` noise-free image in ``[0, 1]``.
    noisy : np.ndarray
        ``float32`` image ``(Poisson(photons * clean) + N(0, read_noise**2)) / photons``.
    labels : np.ndarray
        ``int32`` labels of the objects in ``clean``.
    photons : float
        Expected photon count at intensity 1.
    read_noise : float
        Standard deviation of the Gaussian read noise in photo-electrons.
    meta : ImageMeta
        Axes and pixel size.
    """

    clean: np.ndarray
    noisy: np.ndarray
    labels: np.ndarray
    photons: float
    read_noise: float
    meta: ImageMeta


@dataclass(frozen=True, eq=False)
class Timelapse:
    """A synthetic movie of moving, dividing cells with tracking ground truth.

    Attributes
    ----------
    movie : np.ndarray
        ``float32`` ``TYX`` movie.
    labels : np.ndarray
        ``int32`` ``TYX`` label movie; a cell keeps its track label in every frame it exists.
    tracks : pd.DataFrame
        Cell Tracking Challenge table, columns ``label, begin, end, parent`` (``parent`` 0 for
        none); ``begin``/``end`` are the first and last frame of the track.
    objects : pd.DataFrame
        One row per cell per frame: ``frame, label, y, x`` (true centre in pixels).
    meta : ImageMeta
        Axes ``"TYX"`` and pixel size.
    """

    movie: np.ndarray
    labels: np.ndarray
    tracks: pd.DataFrame
    objects: pd.DataFrame
    meta: ImageMeta


@dataclass(frozen=True, eq=False)
class CTCData:
    """Label movie and track table read from a Cell Tracking Challenge folder.

    Attributes
    ----------
    labels : np.ndarray
        ``TYX`` or ``TZYX`` label movie.
    tracks : pd.DataFrame
        Columns ``label, begin, end, parent``.
    kind : str
        ``"GT"`` (``TRA/man_track*``) or ``"RES"`` (``res_track.txt``, ``mask*.tif``).
    """

    labels: np.ndarray
    tracks: pd.DataFrame
    kind: str


# --------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise InputError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def _check_shape(
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


def _check_number(name: str, value: float, lo: float, hi: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise InputError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not (lo <= value <= hi) or not math.isfinite(value):
        raise InputError(f"{name} must be in [{lo}, {hi}], got {value}")
    return value


def _check_int(name: str, value: int, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise InputError(f"{name} must be an integer, got {value!r}")
    if not lo <= value <= hi:
        raise InputError(f"{name} must be in [{lo}, {hi}], got {value}")
    return int(value)


def _check_range(
    name: str, value: tuple[float, float], lo: float, hi: float = math.inf
) -> tuple[float, float]:
    try:
        a, b = (float(v) for v in value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a (min, max) pair of numbers, got {value!r}") from None
    if not (lo <= a <= b <= hi):
        raise InputError(f"{name} must satisfy {lo} <= min <= max <= {hi}, got {value!r}")
    return a, b


# --------------------------------------------------------------------------------------------
# Star-shaped objects: perturbed ellipses/ellipsoids in physical coordinates
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Shapes:
    """Geometry of n objects in d dimensions, in physical units.

    The boundary of object i, seen from its centre, lies at scaled distance ``r(n) = 1 +
    sum_k amps[k] * cos(n . waves[k] + phases[k])`` where ``n`` is the unit direction in the
    object's axis-normalised frame: a few low-frequency waves on the unit sphere give smooth,
    irregular, still star-shaped outlines.
    """

    centers: np.ndarray  # (n, d)
    rot: np.ndarray  # (n, d, d), column k = direction of semi-axis k
    axes: np.ndarray  # (n, d) semi-axes
    waves: np.ndarray  # (n, K, d)
    amps: np.ndarray  # (n, K)
    phases: np.ndarray  # (n, K)

    def with_centers(self, centers: np.ndarray) -> _Shapes:
        return _Shapes(centers, self.rot, self.axes, self.waves, self.amps, self.phases)


def _rotations(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    if d == 2:
        t = rng.uniform(0, np.pi, n)
        c, s = np.cos(t), np.sin(t)
        return np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)
    # QR of a Gaussian matrix with the sign fix gives rotations uniform over SO(3).
    q, r = np.linalg.qr(rng.standard_normal((n, d, d)))
    q = q * np.sign(np.diagonal(r, axis1=-2, axis2=-1))[:, None, :]
    return q


def _random_shapes(
    rng: np.random.Generator,
    mean_radius: np.ndarray,
    aspect: np.ndarray,
    d: int,
    irregularity: float,
    n_waves: int = 3,
) -> _Shapes:
    """Random orientation, axis ratios and outline perturbation; centres left at 0."""
    n = len(mean_radius)
    if d == 2:
        axes = np.stack([1 / np.sqrt(aspect), np.sqrt(aspect)], -1)
    else:
        # Prolate/oblate mixtures: one long axis, two axes shortened by independent ratios,
        # then normalised so that the geometric mean of the semi-axes is the mean radius.
        second = rng.uniform(aspect, 1.0)
        raw = np.stack([np.ones(n), second, aspect], -1)
        axes = raw / np.cbrt(np.prod(raw, -1))[:, None]
    axes = axes * mean_radius[:, None]
    dirs = rng.standard_normal((n, n_waves, d))
    dirs /= np.linalg.norm(dirs, axis=-1, keepdims=True)
    # |w| in 1.5-3.5 keeps the perturbation to angular harmonics of order ~2-4 (lumpy, not
    # spiky), like real nuclear outlines.
    waves = dirs * rng.uniform(1.5, 3.5, (n, n_waves, 1))
    amps = irregularity * rng.uniform(0.0, 1.0, (n, n_waves))
    phases = rng.uniform(0, 2 * np.pi, (n, n_waves))
    return _Shapes(np.zeros((n, d)), _rotations(rng, n, d), axes, waves, amps, phases)


def _boundary_radius(s: _Shapes, idx: np.ndarray, dirs: np.ndarray) -> np.ndarray:
    """Distance from centre to boundary of objects ``idx`` (P,) along unit ``dirs`` (P, d)."""
    local = (dirs[:, None, :] @ s.rot[idx])[:, 0, :]
    scaled = local / s.axes[idx]
    rho = np.linalg.norm(scaled, axis=-1)
    n_e = scaled / rho[:, None]
    phase = (s.waves[idx] @ n_e[:, :, None])[:, :, 0] + s.phases[idx]
    r = 1.0 + np.sum(s.amps[idx] * np.cos(phase), axis=-1)
    return r / rho


def _gauge(s: _Shapes, i: int, offsets: np.ndarray) -> np.ndarray:
    """Scaled distance of physical ``offsets`` (..., d) from object i: < 1 inside, 0 at centre."""
    scaled = (offsets @ s.rot[i]) / s.axes[i]
    rho = np.linalg.norm(scaled, axis=-1)
    n_e = scaled / np.maximum(rho, 1e-12)[..., None]
    r = 1.0 + np.cos(n_e @ s.waves[i].T + s.phases[i]) @ s.amps[i]
    return rho / r


def _place(
    rng: np.random.Generator,
    s: _Shapes,
    extent: np.ndarray,
    touching: np.ndarray,
    *,
    gap: float,
    contact: tuple[float, float],
    what: str,
) -> _Shapes:
    """Place objects one by one, isolated or in contact with an earlier one.

    ``ratio = distance / (R_i + R_j)`` along the line joining two centres (R the boundary
    radii in that direction) measures closeness: isolated objects need ``ratio >= gap`` to
    every other, touching objects are put at ``ratio`` in ``contact`` (overlap, so they share
    a boundary after the split) and need ``ratio >= contact[0]`` to every other.
    """
    n, d = s.centers.shape
    centers = np.zeros((n, d))
    r_out = s.axes.max(axis=1) * (1.0 + s.amps.sum(axis=1))
    for i in range(n):
        placed = False
        for attempt in range(_ROUNDS):
            want_touch = bool(touching[i]) and i > 0 and attempt < _ROUNDS - 2
            if want_touch:
                partner = rng.integers(0, i, _CANDIDATES)
                u = rng.standard_normal((_CANDIDATES, d))
                u /= np.linalg.norm(u, axis=-1, keepdims=True)
                r_i = _boundary_radius(s, np.full(_CANDIDATES, i), -u)
                r_p = _boundary_radius(s, partner, u)
                dist = rng.uniform(*contact, _CANDIDATES) * (r_i + r_p)
                cand = centers[partner] + u * dist[:, None]
                min_ratio = contact[0]
            else:
                cand = rng.uniform(0, 1, (_CANDIDATES, d)) * extent
                min_ratio = gap
            ok = np.all((cand >= 0) & (cand <= extent), axis=1)
            if i > 0:
                diff = cand[:, None, :] - centers[None, :i, :]  # (K, i, d)
                dist = np.linalg.norm(diff, axis=-1)
                # Only pairs within reach of their largest radii can be too close; the exact
                # directional radii are computed for those alone.
                kk, jj = np.nonzero(dist < min_ratio * (r_out[i] + r_out[:i]))
                if kk.size:
                    u = diff[kk, jj] / np.maximum(dist[kk, jj], 1e-9)[:, None]
                    r_j = _boundary_radius(s, jj, u)
                    r_i = _boundary_radius(s, np.full(kk.size, i), -u)
                    close = dist[kk, jj] / (r_i + r_j) < min_ratio
                    ok[kk[close]] = False
            good = np.flatnonzero(ok)
            if good.size:
                centers[i] = cand[good[0]]
                placed = True
                break
        if not placed:
            raise InputError(
                f"could place only {i} of {n} {what} in an image of this size; use fewer or "
                "smaller objects, a larger shape, or more touching"
            )
    return s.with_centers(centers)


def _rasterize(
    shape: tuple[int, ...],
    spacing: np.ndarray,
    s: _Shapes,
    *,
    min_size: int = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw objects into labels, one label per pixel.

    Returns ``labels`` (consecutive 1..N), ``fmap`` (scaled distance of each pixel to the centre
    of the object owning it, 1 in background) and ``kept`` (object index of each label).
    """
    labels = np.zeros(shape, np.int32)
    fmap = np.ones(shape, np.float32)
    n = len(s.centers)
    extent_max = s.axes.max(axis=1) * (1.0 + s.amps.sum(axis=1)) + spacing.max()
    shape_arr = np.asarray(shape)
    for i in range(n):
        c = s.centers[i] / spacing
        half = extent_max[i] / spacing
        lo = np.maximum(np.floor(c - half).astype(int), 0)
        hi = np.minimum(np.ceil(c + half).astype(int) + 1, shape_arr)
        if np.any(hi <= lo):
            continue
        sl = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
        axes_coords = [
            np.arange(a, b) * sp - cc
            for a, b, sp, cc in zip(lo, hi, spacing, s.centers[i], strict=True)
        ]
        offsets = np.stack(np.meshgrid(*axes_coords, indexing="ij"), axis=-1)
        f = _gauge(s, i, offsets)
        sub_f = fmap[sl]
        win = f < sub_f
        sub_f[win] = f[win]
        labels[sl][win] = i + 1
    # The min-distance split can leave a sliver of one object on the far side of another;
    # keep each object's largest 4-/6-connected piece so that every label is one component.
    for k, sl in enumerate(ndi.find_objects(labels), start=1):
        if sl is None:
            continue
        mine = labels[sl] == k
        comp, ncomp = ndi.label(mine)
        if ncomp > 1:
            sizes = np.bincount(comp.ravel())
            sizes[0] = 0
            drop = mine & (comp != np.argmax(sizes))
            labels[sl][drop] = 0
            fmap[sl][drop] = 1.0
    counts = np.bincount(labels.ravel(), minlength=n + 1)
    kept = np.flatnonzero(counts[1:] >= min_size)
    lut = np.zeros(n + 1, np.int32)
    lut[kept + 1] = np.arange(1, kept.size + 1, dtype=np.int32)
    small = (counts[1:] > 0) & (counts[1:] < min_size)
    if small.any():
        fmap[np.isin(labels, np.flatnonzero(small) + 1)] = 1.0
    return lut[labels], fmap, kept


# --------------------------------------------------------------------------------------------
# Image formation
# --------------------------------------------------------------------------------------------


def _smooth_noise(
    rng: np.random.Generator, shape: tuple[int, ...], sigma: np.ndarray
) -> np.ndarray:
    field = ndi.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma)
    return field / max(float(field.std()), 1e-12)


def _contact_mask(labels: np.ndarray) -> np.ndarray:
    """Pixels of an object next to a pixel of another object (not background)."""
    big = np.iinfo(np.int32).max
    hi = ndi.grey_dilation(labels, size=3)
    lo = ndi.grey_erosion(np.where(labels > 0, labels, big), size=3)
    return (labels > 0) & ((hi != labels) | ((lo != labels) & (lo != big)))


def _background(rng: np.random.Generator, shape: tuple[int, ...], level: float) -> np.ndarray:
    """Offset plus a linear gradient plus a few very low-frequency waves (uneven illumination)."""
    grids = np.meshgrid(
        *[np.linspace(-0.5, 0.5, s, dtype=np.float32) for s in shape], indexing="ij", sparse=True
    )
    d = len(shape)
    direction = rng.standard_normal(d)
    direction /= np.linalg.norm(direction)
    gradient = rng.uniform(0.2, 0.8)
    out = np.float32(level) * (
        1.0 + sum(g * np.float32(gradient * w) for g, w in zip(grids, direction, strict=True))
    )
    for _ in range(3):
        k = (rng.normal(0, 0.6, d) * 2 * np.pi).astype(np.float32)  # mostly < 1 cycle per image
        phase = sum(g * kk for g, kk in zip(grids, k, strict=True)) + np.float32(
            rng.uniform(0, 2 * np.pi)
        )
        out = out + np.float32(0.1 * level) * np.cos(phase)
    return np.broadcast_to(out, shape).astype(np.float32)


def _poisson_gaussian(
    rng: np.random.Generator, clean: np.ndarray, photons: float, read_noise: float
) -> np.ndarray:
    """``(Poisson(photons * clean) + N(0, read_noise**2)) / photons``: unbiased for ``clean``."""
    counts = rng.poisson(np.maximum(clean, 0.0).astype(np.float64) * photons).astype(np.float32)
    if read_noise > 0:
        counts += rng.normal(0.0, read_noise, clean.shape).astype(np.float32)
    return counts / np.float32(photons)


def _add_noise(rng: np.random.Generator, signal: np.ndarray, noise: float) -> np.ndarray:
    if noise <= 0:
        return signal.astype(np.float32)
    # noise is the total standard deviation at intensity 1 split between shot noise
    # (photons = 1 / noise**2 makes the Poisson std at 1 equal to noise) and a read noise of
    # half that, which dominates in the dark background as in real camera images.
    photons = 1.0 / noise**2
    return _poisson_gaussian(rng, signal, photons, read_noise=0.5 * noise * photons)


def _synth_nuclei(
    rng: np.random.Generator,
    shape: tuple[int, ...],
    spacing: np.ndarray,
    *,
    n_nuclei: int,
    radius: tuple[float, float],
    touching: float,
    aspect: tuple[float, float],
    irregularity: float,
    brightness_range: float,
    texture: float,
    mitotic: float,
    out_of_focus: int,
    background: float,
    blur: np.ndarray,
    noise: float,
    attenuation: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Shared 2D/3D nuclei simulation; lengths in physical units of ``spacing``."""
    d = len(shape)
    n = n_nuclei
    mean_r = rng.uniform(*radius, n)
    asp = rng.uniform(*aspect, n)
    is_mitotic = rng.random(n) < mitotic
    # Condensed (mitotic/apoptotic) nuclei: small, elongated, very bright, no texture.
    mean_r[is_mitotic] *= 0.6
    asp[is_mitotic] *= 0.7
    shapes = _random_shapes(rng, mean_r, asp, d, irregularity)
    extent = (np.asarray(shape) - 1) * spacing
    touch = np.zeros(n, bool)
    touch[rng.permutation(n)[: round(touching * n)]] = True
    shapes = _place(rng, shapes, extent, touch, gap=1.1, contact=(0.72, 0.95), what="nuclei")
    labels, fmap, kept = _rasterize(shape, spacing, shapes, min_size=max(4, 2**d))

    # Per-nucleus appearance, indexed by label (index 0 = background).
    m = kept.size
    peak = 0.55  # condensed nuclei (0.85-1.0) form the bright tail above this
    bright = peak * np.exp(rng.uniform(-np.log(brightness_range), 0.0, n))
    bright[is_mitotic] = rng.uniform(0.85, 1.0, int(is_mitotic.sum()))
    dome = np.where(is_mitotic, 0.0, rng.uniform(0.0, 0.3, n))
    rim = np.where(rng.random(n) < 0.3, rng.uniform(0.1, 0.35, n), 0.0) * ~is_mitotic
    tex_amp = np.where(is_mitotic, 0.0, rng.uniform(0.04, 0.15, n) * texture)
    spot_amp = np.where(is_mitotic, 0.0, rng.uniform(0.0, 0.5, n) * texture)

    def per_label(values: np.ndarray) -> np.ndarray:
        return np.concatenate([[0.0], values[kept]]).astype(np.float32)[labels]

    f = fmap
    inside = labels > 0
    profile = 1.0 - per_label(dome) * f**2 + per_label(rim) * np.exp(-(((1.0 - f) / 0.15) ** 2))
    r_mean = float(np.mean(radius))
    tex = _smooth_noise(rng, shape, 0.12 * r_mean / spacing)
    # Chromatin spots: sparse points blurred to small Gaussians, scaled so a lone spot peaks at 1.
    spot_sigma = np.maximum(0.07 * r_mean / spacing, 0.7)
    density = 0.6 / float(np.prod(2.5 * spot_sigma))
    points = (rng.random(shape) < density) & inside
    spots = ndi.gaussian_filter(points.astype(np.float32), spot_sigma)
    spots *= float(np.prod(np.sqrt(2 * np.pi) * spot_sigma))
    signal = (
        per_label(bright)
        * profile
        * (1.0 + per_label(tex_amp) * tex)
        * (1.0 + per_label(spot_amp) * np.minimum(spots, 1.5))
    )
    signal[~inside] = 0.0
    # A slight dip where nuclei touch, of random strength per image, as real clumps often show.
    if m > 1:
        signal[_contact_mask(labels)] *= rng.uniform(0.7, 1.0)
    np.clip(signal, 0.0, None, out=signal)

    if out_of_focus > 0:
        oof_r = rng.uniform(1.0, 1.6, out_of_focus) * radius[1]
        oof = _random_shapes(rng, oof_r, rng.uniform(0.6, 1.0, out_of_focus), d, irregularity)
        oof = oof.with_centers(rng.uniform(0, 1, (out_of_focus, d)) * extent)
        oof_labels, oof_f, oof_kept = _rasterize(shape, spacing, oof)
        dimmest = peak / brightness_range
        amp = np.concatenate([[0.0], rng.uniform(0.3, 0.6, oof_kept.size)]) * dimmest
        layer = amp.astype(np.float32)[oof_labels] * (1.0 - oof_f**2)
        # Heavy defocus: blur of about half the blob radius, so they read as haze, not nuclei.
        signal += ndi.gaussian_filter(layer, 0.5 * radius[1] / spacing)

    signal = ndi.gaussian_filter(signal, blur) if np.any(blur > 0) else signal
    if attenuation > 0 and d == 3:
        depth = np.linspace(1.0, 1.0 - attenuation, shape[0], dtype=np.float32)
        signal *= depth[:, None, None]
    signal += _background(rng, shape, background)
    image = _add_noise(rng, signal, noise)
    np.clip(image, 0.0, None, out=image)
    return image.astype(np.float32), labels


# --------------------------------------------------------------------------------------------
# Public generators
# --------------------------------------------------------------------------------------------


def nuclei_2d(
    shape: tuple[int, int] = (256, 256),
    *,
    n_nuclei: int = 40,
    radius: tuple[float, float] = (6.0, 12.0),
    touching: float = 0.3,
    aspect: tuple[float, float] = (0.45, 0.9),
    irregularity: float = 0.05,
    brightness_range: float = 3.0,
    texture: float = 1.0,
    mitotic: float = 0.08,
    out_of_focus: int = 3,
    background: float = 0.1,
    blur: float = 1.0,
    noise: float = 0.06,
    pixel_size: float = 0.5,
    seed: int = 0,
) -> SyntheticNuclei:
    """Synthetic 2D fluorescence nuclei with instance labels.

    The image imitates a widefield/confocal nuclear stain (DAPI/Hoechst): irregular elliptical
    nuclei of varying size and brightness with internal texture, some in touching clumps,
    blurred by the PSF, on an uneven background, with Poisson-Gaussian camera noise.

    Parameters
    ----------
    shape : tuple of int
        Image size ``(rows, cols)``, each at least 16.
    n_nuclei : int
        Number of nuclei (0-2000). Density grows with it; if they cannot all be placed an
        InputError says so. Centres lie anywhere in the image, so some nuclei are cut by the
        border (and labelled where visible).
    radius : (float, float)
        Range of the mean radius ``sqrt(a * b)`` of the nuclei in pixels; drawn uniformly.
    touching : float
        Fraction (0-1) of nuclei placed overlapping an earlier one, forming pairs and clumps.
        Overlaps are split along a Voronoi-like curve: touching labels share a boundary with no
        gap. The other nuclei keep a small gap to all neighbours.
    aspect : (float, float)
        Range of the minor/major axis ratio (1 = round). Real nuclei: about 0.45-0.9.
    irregularity : float
        Amplitude (0-0.15) of the low-frequency outline perturbation; 0 gives exact ellipses.
    brightness_range : float
        Ratio (>= 1) between the brightest and dimmest ordinary nuclei; brightness is
        log-uniform, at most 0.55 before noise (condensed nuclei, see ``mitotic``, form a
        brighter tail, as in real images).
    texture : float
        Strength (>= 0) of internal texture: smooth intensity variation and chromatin spots.
        About 30% of nuclei also get a brighter rim, and most are brighter in the centre.
    mitotic : float
        Fraction (0-1) of condensed nuclei: 0.6x smaller, more elongated, bright (0.85-1.0)
        and untextured, like mitotic or apoptotic nuclei. They are labelled.
    out_of_focus : int
        Number of dim, heavily blurred blobs added to the image and NOT labelled (nuclei out
        of the focal plane); their peak stays below the dimmest nucleus.
    background : float
        Mean background level; a random gradient and low-frequency waves modulate it by up to
        about +-50%.
    blur : float
        Standard deviation in pixels of the Gaussian PSF applied to the nuclei (0 = none).
    noise : float
        Noise standard deviation at intensity 1: Poisson shot noise with
        ``photons = 1 / noise**2`` plus Gaussian read noise of ``noise / 2``. 0 gives the
        clean image.
    pixel_size : float
        Physical pixel size in µm, only recorded in the metadata.
    seed : int
        Seed of the random generator; the same seed gives identical output.

    Returns
    -------
    SyntheticNuclei
        ``image`` float32 ``YX`` (background ~0.05-0.15, nuclei ~0.15-1.0), ``labels`` int32
        with one label per visible nucleus, consecutive ``1..N`` (N = ``n_nuclei`` unless a
        nucleus is hidden almost entirely behind others, which the placement avoids), and
        ``meta`` (axes ``"YX"``, spacing in µm).
    """
    shape = _check_shape(shape, (2,))
    n_nuclei = _check_int("n_nuclei", n_nuclei, 0, 2000)
    radius = _check_range("radius", radius, 1.5, min(shape) / 2)
    touching = _check_number("touching", touching, 0.0, 1.0)
    aspect = _check_range("aspect", aspect, 0.2, 1.0)
    irregularity = _check_number("irregularity", irregularity, 0.0, 0.15)
    brightness_range = _check_number("brightness_range", brightness_range, 1.0, 100.0)
    texture = _check_number("texture", texture, 0.0, 3.0)
    mitotic = _check_number("mitotic", mitotic, 0.0, 1.0)
    out_of_focus = _check_int("out_of_focus", out_of_focus, 0, 100)
    background = _check_number("background", background, 0.0, 1.0)
    blur = _check_number("blur", blur, 0.0, 20.0)
    noise = _check_number("noise", noise, 0.0, 1.0)
    pixel_size = _check_number("pixel_size", pixel_size, 1e-6, 1e6)
    seed = _check_seed(seed)
    rng = np.random.default_rng(seed)
    image, labels = _synth_nuclei(
        rng,
        shape,
        np.ones(2),
        n_nuclei=n_nuclei,
        radius=radius,
        touching=touching,
        aspect=aspect,
        irregularity=irregularity,
        brightness_range=brightness_range,
        texture=texture,
        mitotic=mitotic,
        out_of_focus=out_of_focus,
        background=background,
        blur=np.full(2, blur),
        noise=noise,
    )
    meta = ImageMeta(
        axes="YX",
        spacing={"Y": pixel_size, "X": pixel_size},
        unit="µm",
        source=f"synthetic: nuclei_2d(seed={seed})",
        extra={"generator": "nuclei_2d", "seed": seed, "n_nuclei": int(labels.max())},
    )
    return SyntheticNuclei(image, labels, meta)


def nuclei_3d(
    shape: tuple[int, int, int] = (32, 128, 128),
    *,
    n_nuclei: int = 40,
    radius_um: tuple[float, float] = (3.0, 5.0),
    spacing: tuple[float, float, float] = (2.0, 0.5, 0.5),
    touching: float = 0.2,
    aspect: tuple[float, float] = (0.6, 0.95),
    irregularity: float = 0.05,
    brightness_range: float = 3.0,
    texture: float = 1.0,
    mitotic: float = 0.05,
    out_of_focus: int = 0,
    background: float = 0.1,
    blur_um: tuple[float, float] = (1.6, 0.4),
    attenuation: float = 0.3,
    noise: float = 0.06,
    seed: int = 0,
) -> SyntheticNuclei:
    """Synthetic 3D nuclei in an anisotropic ``ZYX`` stack, with instance labels.

    Nuclei are ellipsoids of random orientation in physical space (µm); sampled on a grid
    with a coarser z step they look compressed along z in voxel units, as in real confocal
    stacks. Appearance follows :func:`nuclei_2d`.

    Parameters
    ----------
    shape : tuple of int
        Stack size ``(planes, rows, cols)``, each at least 8.
    n_nuclei : int
        Number of nuclei (0-2000).
    radius_um : (float, float)
        Range of the mean radius (geometric mean of the semi-axes) in µm.
    spacing : (float, float, float)
        Voxel size ``(dz, dy, dx)`` in µm. A z step larger than the lateral one makes objects
        span fewer planes: the z extent in voxels is about ``dy / dz`` times the y extent.
    touching : float
        Fraction (0-1) of nuclei placed overlapping an earlier one (split without gaps).
    aspect : (float, float)
        Range of the shortest/longest semi-axis ratio (1 = sphere).
    irregularity : float
        Amplitude (0-0.15) of the smooth surface perturbation.
    brightness_range : float
        Ratio (>= 1) between the brightest and dimmest ordinary nuclei (log-uniform).
    texture : float
        Strength (>= 0) of internal texture and chromatin spots.
    mitotic : float
        Fraction (0-1) of small, bright, condensed nuclei.
    out_of_focus : int
        Number of dim, heavily blurred unlabelled blobs.
    background : float
        Mean background level (with gradient and low-frequency waves).
    blur_um : (float, float)
        Standard deviation of the Gaussian PSF in µm, ``(axial, lateral)``; the axial one is
        larger, as for any objective.
    attenuation : float
        Fraction (0-0.9) by which signal dims from the first to the last plane (scattering
        and absorption deeper in the sample).
    noise : float
        Noise standard deviation at intensity 1 (Poisson with ``photons = 1 / noise**2`` plus
        read noise ``noise / 2``); 0 gives the clean image.
    seed : int
        Seed of the random generator.

    Returns
    -------
    SyntheticNuclei
        ``image`` float32 ``ZYX``, ``labels`` int32 ``ZYX`` consecutive ``1..N``, ``meta``
        with axes ``"ZYX"`` and ``spacing`` in µm.
    """
    shape = _check_shape(shape, (3,), minimum=8)
    n_nuclei = _check_int("n_nuclei", n_nuclei, 0, 2000)
    try:
        sp = np.array([float(v) for v in spacing])
    except (TypeError, ValueError):
        raise InputError(f"spacing must be three positive numbers, got {spacing!r}") from None
    if sp.shape != (3,) or not np.all(np.isfinite(sp)) or np.any(sp <= 0):
        raise InputError(f"spacing must be three positive numbers (dz, dy, dx), got {spacing!r}")
    extent_um = np.asarray(shape) * sp
    radius_um = _check_range(
        "radius_um", radius_um, 1.5 * float(sp[1:].min()), float(extent_um.min()) / 2
    )
    touching = _check_number("touching", touching, 0.0, 1.0)
    aspect = _check_range("aspect", aspect, 0.2, 1.0)
    irregularity = _check_number("irregularity", irregularity, 0.0, 0.15)
    brightness_range = _check_number("brightness_range", brightness_range, 1.0, 100.0)
    texture = _check_number("texture", texture, 0.0, 3.0)
    mitotic = _check_number("mitotic", mitotic, 0.0, 1.0)
    out_of_focus = _check_int("out_of_focus", out_of_focus, 0, 100)
    background = _check_number("background", background, 0.0, 1.0)
    try:
        blur_ax, blur_lat = (float(v) for v in blur_um)
    except (TypeError, ValueError):
        raise InputError(f"blur_um must be (axial, lateral) in µm, got {blur_um!r}") from None
    if not (0 <= blur_lat <= 50 and 0 <= blur_ax <= 50):
        raise InputError(f"blur_um values must be in [0, 50] µm, got {blur_um!r}")
    attenuation = _check_number("attenuation", attenuation, 0.0, 0.9)
    noise = _check_number("noise", noise, 0.0, 1.0)
    seed = _check_seed(seed)
    rng = np.random.default_rng(seed)
    blur = np.array([blur_ax, blur_lat, blur_lat]) / sp
    image, labels = _synth_nuclei(
        rng,
        shape,
        sp,
        n_nuclei=n_nuclei,
        radius=radius_um,
        touching=touching,
        aspect=aspect,
        irregularity=irregularity,
        brightness_range=brightness_range,
        texture=texture,
        mitotic=mitotic,
        out_of_focus=out_of_focus,
        background=background,
        blur=blur,
        noise=noise,
        attenuation=attenuation,
    )
    meta = ImageMeta(
        axes="ZYX",
        spacing={"Z": float(sp[0]), "Y": float(sp[1]), "X": float(sp[2])},
        unit="µm",
        source=f"synthetic: nuclei_3d(seed={seed})",
        extra={"generator": "nuclei_3d", "seed": seed, "n_nuclei": int(labels.max())},
    )
    return SyntheticNuclei(image, labels, meta)


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
    shape = _check_shape(shape, (2,))
    n = _check_int("n", n, 0, 100)
    radius = _check_range("radius", radius, 2.0, min(shape) / 4)
    if not isinstance(overlap, bool) or not isinstance(border, bool):
        raise InputError("overlap and border must be True or False")
    noise = _check_number("noise", noise, 0.0, 1.0)
    seed = _check_seed(seed)
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


def noisy_clean_pair(
    shape: tuple[int, ...] = (256, 256),
    *,
    photons: float = 20.0,
    read_noise: float = 1.0,
    seed: int = 0,
    kind: Literal["nuclei", "blobs"] = "nuclei",
) -> NoisyPair:
    """A clean image and a Poisson-Gaussian noisy version of it, for denoising.

    ``noisy = (Poisson(photons * clean) + N(0, read_noise**2)) / photons``, so
    ``E[noisy] = clean`` and ``Var[noisy] = clean / photons + (read_noise / photons)**2``.

    Parameters
    ----------
    shape : tuple of int
        ``(rows, cols)``, or ``(planes, rows, cols)`` for a 3D nuclei stack (spacing 2, 0.5,
        0.5 µm).
    photons : float
        Expected photon count at clean intensity 1 (> 0); lower is noisier. The brightest
        nuclei get about this many photons, the background about a tenth.
    read_noise : float
        Standard deviation of the camera's Gaussian read noise in photo-electrons (>= 0).
    seed : int
        Seed of the random generator (the clean image and the noise both depend on it).
    kind : {"nuclei", "blobs"}
        Content of the clean image: :func:`nuclei_2d`/:func:`nuclei_3d` with no noise, or
        :func:`blobs` (2D only).

    Returns
    -------
    NoisyPair
        ``clean`` float32 rescaled to ``[0, 1]``, ``noisy`` float32 (can be slightly negative
        from read noise), ``labels`` of the objects, and the noise parameters.
    """
    shape = _check_shape(shape, (2, 3), minimum=8)
    photons = _check_number("photons", photons, 1e-3, 1e9)
    read_noise = _check_number("read_noise", read_noise, 0.0, 1e6)
    seed = _check_seed(seed)
    if kind == "nuclei":
        if len(shape) == 2:
            n = max(1, round(40 * math.prod(shape) / 256**2))
            gen = nuclei_2d(shape, n_nuclei=n, noise=0.0, seed=seed)
        else:
            n = max(1, round(40 * math.prod(shape) / (32 * 128 * 128)))
            gen = nuclei_3d(shape, n_nuclei=n, noise=0.0, seed=seed)
        clean, labels, meta = gen.image, gen.labels, gen.meta
    elif kind == "blobs":
        if len(shape) != 2:
            raise InputError(f"kind='blobs' is 2D only, got shape {shape}")
        n = int(np.clip(math.prod(shape) // 2000, 1, 100))
        b = blobs(n, shape=shape, noise=0.0, seed=seed)
        clean, labels, meta = b.image, b.labels, b.meta
    else:
        raise InputError(f"kind must be 'nuclei' or 'blobs', got {kind!r}")
    clean = (clean / max(float(clean.max()), 1e-12)).astype(np.float32)
    # A separate stream so the noise does not replay the draws that built the clean image.
    rng = np.random.default_rng([seed, 1])
    noisy = _poisson_gaussian(rng, clean, photons, read_noise)
    meta = ImageMeta(
        meta.axes,
        dict(meta.spacing),
        meta.unit,
        source=f"synthetic: noisy_clean_pair(seed={seed})",
        extra={
            "generator": "noisy_clean_pair",
            "seed": seed,
            "kind": kind,
            "photons": photons,
            "read_noise": read_noise,
        },
    )
    return NoisyPair(clean, noisy.astype(np.float32), labels, photons, read_noise, meta)


def timelapse(
    n_frames: int = 20,
    *,
    shape: tuple[int, int] = (128, 128),
    n_cells: int = 10,
    speed: float = 2.0,
    persistence: float = 0.7,
    division_rate: float = 0.02,
    radius: tuple[float, float] = (5.0, 8.0),
    noise: float = 0.04,
    blur: float = 1.0,
    pixel_size: float = 0.5,
    seed: int = 0,
) -> Timelapse:
    """A movie of nuclei that move, and divide, with tracking ground truth.

    Cells follow a persistent random walk: ``v[t] = p * v[t-1] + sqrt(1 - p**2) * s * N(0, 1)``
    per axis, with ``s`` set so that the mean step length is ``speed``. They bounce off the
    image borders (always fully inside), push each other apart when closer than 0.85 of their
    summed radii (touching is allowed; each pixel keeps one label), grow 1% per frame and
    divide along their long axis.

    Parameters
    ----------
    n_frames : int
        Number of frames (1-1000).
    shape : tuple of int
        Frame size ``(rows, cols)``.
    n_cells : int
        Cells in the first frame (1-500).
    speed : float
        Mean displacement per frame in pixels.
    persistence : float
        Correlation ``p`` (0-0.99) of the velocity between frames; 0 is a plain random walk.
    division_rate : float
        Probability (0-1) per cell per frame of dividing. A cell must be 3 frames old to divide
        again, and divisions stop while cells cover more than 35% of the image. At a division
        in frame ``t`` the parent track ends at ``t - 1`` and two daughters with new labels
        begin at ``t``, on either side of the parent's position.
    radius : (float, float)
        Range of the initial mean cell radius in pixels; daughters have 0.8x the parent radius.
    noise : float
        Noise standard deviation at intensity 1 (Poisson-Gaussian, as in :func:`nuclei_2d`).
    blur : float
        PSF standard deviation in pixels.
    pixel_size : float
        Physical pixel size in µm, recorded in the metadata.
    seed : int
        Seed of the random generator.

    Returns
    -------
    Timelapse
        ``movie`` float32 ``TYX``; ``labels`` int32 ``TYX`` where each track keeps its label
        (tracks numbered ``1..N`` in order of appearance); ``tracks`` (CTC ``label, begin,
        end, parent``); ``objects`` (``frame, label, y, x``); ``meta``.
    """
    n_frames = _check_int("n_frames", n_frames, 1, 1000)
    shape = _check_shape(shape, (2,))
    n_cells = _check_int("n_cells", n_cells, 1, 500)
    speed = _check_number("speed", speed, 0.0, min(shape) / 4)
    persistence = _check_number("persistence", persistence, 0.0, 0.99)
    division_rate = _check_number("division_rate", division_rate, 0.0, 1.0)
    radius = _check_range("radius", radius, 2.0, min(shape) / 6)
    noise = _check_number("noise", noise, 0.0, 1.0)
    blur = _check_number("blur", blur, 0.0, 20.0)
    pixel_size = _check_number("pixel_size", pixel_size, 1e-6, 1e6)
    seed = _check_seed(seed)
    area = math.prod(shape)
    if n_cells * np.pi * (0.5 * sum(radius)) ** 2 > 0.35 * area:
        raise InputError(f"{n_cells} cells of radius {radius} px do not fit in {shape}")
    rng = np.random.default_rng(seed)
    size = np.asarray(shape, float) - 1

    rad = rng.uniform(*radius, n_cells)
    r_max = 1.25 * radius[1]
    pos = np.zeros((n_cells, 2))
    for i in range(n_cells):
        # Start apart (dart throwing); later frames only push cells apart when they collide.
        for _ in range(_ROUNDS):
            cand = rng.uniform(rad[i] + 1, size - rad[i] - 1, (_CANDIDATES, 2))
            dist = np.linalg.norm(cand[:, None] - pos[None, :i], axis=-1)
            good = np.flatnonzero(np.all(dist >= rad[i] + rad[:i] + 1, axis=1))
            if good.size:
                pos[i] = cand[good[0]]
                break
        else:
            raise InputError(f"{n_cells} cells of radius {radius} px do not fit in {shape}")
    sigma_v = speed / math.sqrt(math.pi / 2)  # mean |v| of a 2D Gaussian is sigma*sqrt(pi/2)
    vel = rng.normal(0.0, sigma_v, (n_cells, 2))
    asp = rng.uniform(0.6, 0.9, n_cells)
    angle = rng.uniform(0, np.pi, n_cells)
    bright = 0.8 * np.exp(rng.uniform(-np.log(3.0), 0.0, n_cells))
    ids = np.arange(1, n_cells + 1)
    age = np.full(n_cells, 3)
    # Keep the outline perturbation per track so a cell keeps its shape from frame to frame.
    waves = rng.standard_normal((n_cells, 3, 2))
    waves *= rng.uniform(1.5, 3.5, (n_cells, 3, 1)) / np.linalg.norm(waves, axis=-1, keepdims=True)
    amps = 0.05 * rng.uniform(0, 1, (n_cells, 3))
    phases = rng.uniform(0, 2 * np.pi, (n_cells, 3))
    tracks: list[list[int]] = [[int(i), 0, 0, 0] for i in ids]
    next_id = n_cells + 1

    def separate(pos: np.ndarray, rad: np.ndarray) -> np.ndarray:
        for _ in range(10):
            diff = pos[:, None, :] - pos[None, :, :]
            dist = np.linalg.norm(diff, axis=-1)
            need = 0.85 * (rad[:, None] + rad[None, :])
            np.fill_diagonal(need, 0.0)
            short = np.clip(need - dist, 0.0, None)
            if not short.any():
                break
            unit = diff / np.maximum(dist, 1e-6)[..., None]
            pos = pos + 0.5 * np.sum(short[..., None] * unit, axis=1)
            pos = np.clip(pos, rad[:, None], size - rad[:, None])
        return pos

    movie = np.empty((n_frames, *shape), np.float32)
    label_movie = np.empty((n_frames, *shape), np.int32)
    rows: list[tuple[int, int, float, float]] = []
    for t in range(n_frames):
        if t > 0:
            noise_v = rng.normal(0.0, sigma_v, vel.shape)
            vel = persistence * vel + math.sqrt(1 - persistence**2) * noise_v
            pos = pos + vel
            # Reflect at the borders: the cell turns back instead of sticking to the edge.
            lo, hi = rad[:, None], size - rad[:, None]
            below, above = pos < lo, pos > hi
            pos = np.where(below, 2 * lo - pos, np.where(above, 2 * hi - pos, pos))
            vel = np.where(below | above, -vel, vel)
            pos = np.clip(pos, lo, hi)
            angle = angle + rng.normal(0.0, 0.1, angle.shape)
            rad = np.minimum(rad * 1.01, r_max)
            age = age + 1

            divide = (rng.random(len(ids)) < division_rate) & (age >= 3)
            covered = float(np.sum(np.pi * rad**2))
            new: dict[str, list[np.ndarray]] = {
                k: []
                for k in (
                    "pos",
                    "vel",
                    "rad",
                    "asp",
                    "angle",
                    "bright",
                    "ids",
                    "age",
                    "waves",
                    "amps",
                    "phases",
                )
            }
            for i in range(len(ids)):
                if divide[i] and covered < 0.35 * area:
                    tracks[ids[i] - 1][2] = t - 1
                    axis = np.array([np.sin(angle[i]), np.cos(angle[i])])
                    r_d = 0.8 * rad[i]
                    for sign in (-1.0, 1.0):
                        p = np.clip(pos[i] + sign * 0.9 * r_d * axis, r_d, size - r_d)
                        new["pos"].append(p)
                        new["vel"].append(vel[i] + sign * 0.5 * axis)
                        new["rad"].append(np.float64(r_d))
                        new["asp"].append(np.float64(rng.uniform(0.6, 0.9)))
                        new["angle"].append(np.float64(angle[i] + rng.normal(0, 0.3)))
                        new["bright"].append(np.float64(bright[i] * rng.uniform(0.9, 1.1)))
                        new["ids"].append(np.int64(next_id))
                        new["age"].append(np.int64(0))
                        new["waves"].append(waves[i])
                        new["amps"].append(amps[i])
                        new["phases"].append(rng.uniform(0, 2 * np.pi, 3))
                        tracks.append([next_id, t, t, int(ids[i])])
                        next_id += 1
                    covered += np.pi * (2 * r_d**2 - rad[i] ** 2)
                else:
                    for key, arr in (
                        ("pos", pos),
                        ("vel", vel),
                        ("rad", rad),
                        ("asp", asp),
                        ("angle", angle),
                        ("bright", bright),
                        ("ids", ids),
                        ("age", age),
                        ("waves", waves),
                        ("amps", amps),
                        ("phases", phases),
                    ):
                        new[key].append(arr[i])
            pos, vel, rad, asp, angle = (
                np.array(new[k]) for k in ("pos", "vel", "rad", "asp", "angle")
            )
            bright, ids, age = (np.array(new[k]) for k in ("bright", "ids", "age"))
            waves, amps, phases = (np.array(new[k]) for k in ("waves", "amps", "phases"))
            pos = separate(pos, rad)
        else:
            pos = separate(pos, rad)
        for i in ids:
            tracks[i - 1][2] = t

        axes = np.stack([rad / np.sqrt(asp), rad * np.sqrt(asp)], -1)
        c, s_ = np.cos(angle), np.sin(angle)
        # Angle measured in (y, x): the long axis points along (sin, cos).
        rot = np.stack([np.stack([s_, c], -1), np.stack([c, -s_], -1)], -1)
        shapes = _Shapes(pos, rot, axes, waves, amps, phases)
        frame_labels, fmap, kept = _rasterize(shape, np.ones(2), shapes)
        if kept.size != len(ids):  # cannot happen: a cell always owns its centre pixel
            raise AssertionError("a cell vanished while drawing")
        lut = np.concatenate([[0], ids]).astype(np.int32)
        label_movie[t] = lut[frame_labels]
        bvals = np.concatenate([[0.0], bright]).astype(np.float32)[frame_labels]
        tex = _smooth_noise(rng, shape, np.full(2, 1.0))
        signal = bvals * (1.0 - 0.2 * fmap**2) * (1.0 + 0.1 * tex)
        signal[frame_labels == 0] = 0.0
        if blur > 0:
            signal = ndi.gaussian_filter(signal, blur)
        signal += 0.08
        movie[t] = np.clip(_add_noise(rng, signal, noise), 0.0, None)
        rows.extend((t, int(i), float(p[0]), float(p[1])) for i, p in zip(ids, pos, strict=True))

    track_df = pd.DataFrame(tracks, columns=list(TRACK_COLUMNS)).astype(np.int64)
    objects = pd.DataFrame(rows, columns=["frame", "label", "y", "x"])
    meta = ImageMeta(
        axes="TYX",
        spacing={"Y": pixel_size, "X": pixel_size},
        unit="µm",
        source=f"synthetic: timelapse(seed={seed})",
        extra={"generator": "timelapse", "seed": seed, "n_tracks": len(track_df)},
    )
    return Timelapse(movie, label_movie, track_df, objects, meta)


# --------------------------------------------------------------------------------------------
# Cell Tracking Challenge format
# --------------------------------------------------------------------------------------------


def _validate_ctc(labels: np.ndarray, tracks: pd.DataFrame) -> pd.DataFrame:
    """Check a label movie against its track table; return the table as int64, sorted."""
    if not isinstance(labels, np.ndarray) or labels.ndim not in (3, 4):
        raise InputError("the label movie must be a TYX or TZYX array")
    if not np.issubdtype(labels.dtype, np.integer):
        raise InputError(f"the label movie must have an integer dtype, got {labels.dtype}")
    if labels.size and labels.min() < 0:
        raise InputError("the label movie has negative labels")
    if not isinstance(tracks, pd.DataFrame):
        raise InputError("tracks must be a pandas DataFrame with columns label, begin, end, parent")
    missing = [c for c in TRACK_COLUMNS if c not in tracks.columns]
    if missing:
        raise InputError(f"the track table lacks column(s) {missing}; need {list(TRACK_COLUMNS)}")
    table = tracks.loc[:, list(TRACK_COLUMNS)]
    values = table.to_numpy()
    if values.size and (
        not np.all(np.isfinite(values.astype(float)))
        or not np.all(values.astype(float) == np.round(values.astype(float)))
    ):
        raise InputError("the track table must hold integers only")
    table = table.astype(np.int64).sort_values("label").reset_index(drop=True)
    n_frames = labels.shape[0]
    dup = table["label"][table["label"].duplicated()]
    if not dup.empty:
        raise InputError(f"track {int(dup.iloc[0])} appears more than once in the table")
    known = set(table["label"].tolist())
    ends = dict(zip(table["label"], table["end"], strict=True))
    for row in table.itertuples(index=False):
        if row.label <= 0:
            raise InputError(f"track labels must be positive, got {row.label}")
        if not 0 <= row.begin <= row.end < n_frames:
            raise InputError(
                f"track {row.label}: begin {row.begin} and end {row.end} must satisfy "
                f"0 <= begin <= end < {n_frames} (frames in the movie)"
            )
        if row.parent != 0:
            if row.parent not in known:
                raise InputError(f"track {row.label}: parent {row.parent} is not in the table")
            if ends[row.parent] >= row.begin:
                raise InputError(
                    f"track {row.label} begins in frame {row.begin} but its parent "
                    f"{row.parent} ends in frame {ends[row.parent]}; a parent must end before "
                    "its daughters begin"
                )
    frames_of: dict[int, list[int]] = {}
    for t in range(n_frames):
        for lab in np.unique(labels[t]):
            if lab:
                frames_of.setdefault(int(lab), []).append(t)
    for lab in sorted(frames_of):
        if lab not in known:
            fr = frames_of[lab]
            raise InputError(
                f"label {lab} appears in the movie (frames {fr[0]}-{fr[-1]}) but not in the "
                "track table"
            )
    for row in table.itertuples(index=False):
        fr = frames_of.get(int(row.label))
        if not fr:
            raise InputError(
                f"track {row.label} (frames {row.begin}-{row.end}) has no pixels in the movie"
            )
        if fr[0] != row.begin or fr[-1] != row.end:
            raise InputError(
                f"track {row.label}: the table says frames {row.begin}-{row.end}, the movie "
                f"has it in frames {fr[0]}-{fr[-1]}"
            )
        if len(fr) != row.end - row.begin + 1:
            gap = sorted(set(range(row.begin, row.end + 1)) - set(fr))[0]
            raise InputError(
                f"track {row.label} is missing from frame {gap} between its begin {row.begin} "
                f"and end {row.end}"
            )
    return table


def _ctc_names(kind: str) -> tuple[str, str, str]:
    """(subfolder, track file name, mask file prefix) of a CTC kind."""
    if kind == "GT":
        return "TRA", "man_track.txt", "man_track"
    if kind == "RES":
        return "", "res_track.txt", "mask"
    raise InputError(f"kind must be 'GT' or 'RES', got {kind!r}")


def write_ctc(
    folder: str | Path,
    labels_movie: np.ndarray,
    tracks: pd.DataFrame,
    *,
    kind: Literal["GT", "RES"] = "GT",
) -> Path:
    """Write a label movie and its track table in Cell Tracking Challenge layout.

    ``kind="GT"`` writes ``folder/TRA/man_track.txt`` and ``folder/TRA/man_trackTTT.tif``;
    ``kind="RES"`` writes ``folder/res_track.txt`` and ``folder/maskTTT.tif``. Frames are
    numbered with 3 digits (4 beyond 1000 frames); masks are 16-bit TIFFs. The track file has
    one line ``label begin end parent`` per track.

    Parameters
    ----------
    folder : str or Path
        Output folder, created if needed; existing files of the same names are overwritten.
    labels_movie : np.ndarray
        Integer ``TYX`` or ``TZYX`` label movie; a track keeps its label in every frame from
        its begin to its end.
    tracks : pd.DataFrame
        Columns ``label, begin, end, parent`` (``parent`` 0 for none).
    kind : {"GT", "RES"}
        Ground-truth or result layout.

    Returns
    -------
    Path
        The track file written.

    Raises
    ------
    InputError
        Naming the first inconsistency between movie and table (a label missing from the
        table, a begin/end that does not match the frames the label occupies, a gap, an
        unknown parent or a parent that does not end before its daughter begins).
    """
    sub, track_name, prefix = _ctc_names(kind)
    table = _validate_ctc(labels_movie, tracks)
    if labels_movie.size and labels_movie.max() > np.iinfo(np.uint16).max:
        raise InputError("CTC masks are 16-bit: labels must be at most 65535")
    out = Path(folder) / sub if sub else Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    digits = max(3, len(str(labels_movie.shape[0] - 1)))
    for t, frame in enumerate(labels_movie):
        tifffile.imwrite(out / f"{prefix}{t:0{digits}d}.tif", frame.astype(np.uint16))
    track_file = out / track_name
    lines = [" ".join(str(int(v)) for v in row) for row in table.to_numpy()]
    track_file.write_text("\n".join(lines) + ("\n" if lines else ""))
    return track_file


def read_ctc(folder: str | Path) -> CTCData:
    """Read a Cell Tracking Challenge ground-truth or result folder.

    Parameters
    ----------
    folder : str or Path
        A folder holding ``TRA/man_track.txt`` (ground truth), the ``TRA`` folder itself, or a
        folder holding ``res_track.txt`` (results), with the matching ``*TTT.tif`` masks.

    Returns
    -------
    CTCData
        ``labels`` (``TYX``/``TZYX``, as stored), ``tracks`` (``label, begin, end, parent``,
        int64, sorted by label) and ``kind``.

    Raises
    ------
    InputError
        If the folder has no track file, frames are missing, or movie and table disagree.
    """
    folder = Path(folder)
    candidates = [
        (folder / "TRA", "GT"),
        (folder, "GT"),
        (folder, "RES"),
    ]
    for base, kind in candidates:
        _, track_name, prefix = _ctc_names(kind)
        if (base / track_name).is_file():
            break
    else:
        raise InputError(
            f"{folder} is not a CTC folder: expected TRA/man_track.txt or res_track.txt"
        )
    pattern = re.compile(rf"^{prefix}(\d+)\.tiff?$")
    frames = {}
    for path in base.iterdir():
        match = pattern.match(path.name)
        if match:
            frames[int(match.group(1))] = path
    if not frames:
        raise InputError(f"{base} has {track_name} but no {prefix}TTT.tif masks")
    missing = sorted(set(range(max(frames) + 1)) - set(frames))
    if missing:
        raise InputError(f"{base}: mask for frame {missing[0]} is missing")
    labels = np.stack([tifffile.imread(frames[t]) for t in range(len(frames))])
    rows = []
    for n, line in enumerate((base / track_name).read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 4 or not all(p.lstrip("-").isdigit() for p in parts):
            raise InputError(f"{base / track_name} line {n}: expected 4 integers, got {line!r}")
        rows.append([int(p) for p in parts])
    tracks = pd.DataFrame(rows, columns=list(TRACK_COLUMNS), dtype=np.int64)
    return CTCData(labels, _validate_ctc(labels, tracks), kind)
