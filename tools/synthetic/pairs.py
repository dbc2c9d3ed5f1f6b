"""Noisy/clean image pairs for denoising."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from tools.errors import InputError
from tools.synthetic._checks import check_number, check_seed, check_shape
from tools.synthetic._imaging import _poisson_gaussian
from tools.synthetic.blobs import blobs
from tools.synthetic.nuclei import nuclei_2d, nuclei_3d
from tools.types import ImageMeta


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
    shape = check_shape(shape, (2, 3), minimum=8)
    photons = check_number("photons", photons, 1e-3, 1e9)
    read_noise = check_number("read_noise", read_noise, 0.0, 1e6)
    seed = check_seed(seed)
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
