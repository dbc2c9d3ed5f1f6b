"""Image formation: smooth texture, uneven background, Poisson-Gaussian noise."""

from __future__ import annotations

import numpy as np
import scipy.ndimage as ndi


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
