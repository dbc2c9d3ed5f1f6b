"""Fluorescence nuclei in 2D and 3D with instance labels."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.ndimage as ndi

from tools.errors import InputError
from tools.synthetic._checks import check_int, check_number, check_range, check_seed, check_shape
from tools.synthetic._imaging import _add_noise, _background, _contact_mask, _smooth_noise
from tools.synthetic._shapes import _place, _random_shapes, _rasterize
from tools.types import ImageMeta


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


def _checked_look(
    *,
    touching: float,
    aspect: tuple[float, float],
    irregularity: float,
    brightness_range: float,
    texture: float,
    mitotic: float,
    out_of_focus: int,
    background: float,
) -> dict[str, Any]:
    """The appearance parameters both nuclei generators share, checked, for _synth_nuclei."""
    return {
        "touching": check_number("touching", touching, 0.0, 1.0),
        "aspect": check_range("aspect", aspect, 0.2, 1.0),
        "irregularity": check_number("irregularity", irregularity, 0.0, 0.15),
        "brightness_range": check_number("brightness_range", brightness_range, 1.0, 100.0),
        "texture": check_number("texture", texture, 0.0, 3.0),
        "mitotic": check_number("mitotic", mitotic, 0.0, 1.0),
        "out_of_focus": check_int("out_of_focus", out_of_focus, 0, 100),
        "background": check_number("background", background, 0.0, 1.0),
    }


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
    shape = check_shape(shape, (2,))
    n_nuclei = check_int("n_nuclei", n_nuclei, 0, 2000)
    radius = check_range("radius", radius, 1.5, min(shape) / 2)
    look = _checked_look(
        touching=touching, aspect=aspect, irregularity=irregularity,
        brightness_range=brightness_range, texture=texture, mitotic=mitotic,
        out_of_focus=out_of_focus, background=background,
    )
    blur = check_number("blur", blur, 0.0, 20.0)
    noise = check_number("noise", noise, 0.0, 1.0)
    pixel_size = check_number("pixel_size", pixel_size, 1e-6, 1e6)
    seed = check_seed(seed)
    rng = np.random.default_rng(seed)
    image, labels = _synth_nuclei(
        rng,
        shape,
        np.ones(2),
        n_nuclei=n_nuclei,
        radius=radius,
        **look,
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
    shape = check_shape(shape, (3,), minimum=8)
    n_nuclei = check_int("n_nuclei", n_nuclei, 0, 2000)
    try:
        sp = np.array([float(v) for v in spacing])
    except (TypeError, ValueError):
        raise InputError(f"spacing must be three positive numbers, got {spacing!r}") from None
    if sp.shape != (3,) or not np.all(np.isfinite(sp)) or np.any(sp <= 0):
        raise InputError(f"spacing must be three positive numbers (dz, dy, dx), got {spacing!r}")
    extent_um = np.asarray(shape) * sp
    radius_um = check_range(
        "radius_um", radius_um, 1.5 * float(sp[1:].min()), float(extent_um.min()) / 2
    )
    look = _checked_look(
        touching=touching, aspect=aspect, irregularity=irregularity,
        brightness_range=brightness_range, texture=texture, mitotic=mitotic,
        out_of_focus=out_of_focus, background=background,
    )
    try:
        blur_ax, blur_lat = (float(v) for v in blur_um)
    except (TypeError, ValueError):
        raise InputError(f"blur_um must be (axial, lateral) in µm, got {blur_um!r}") from None
    if not (0 <= blur_lat <= 50 and 0 <= blur_ax <= 50):
        raise InputError(f"blur_um values must be in [0, 50] µm, got {blur_um!r}")
    attenuation = check_number("attenuation", attenuation, 0.0, 0.9)
    noise = check_number("noise", noise, 0.0, 1.0)
    seed = check_seed(seed)
    rng = np.random.default_rng(seed)
    blur = np.array([blur_ax, blur_lat, blur_lat]) / sp
    image, labels = _synth_nuclei(
        rng,
        shape,
        sp,
        n_nuclei=n_nuclei,
        radius=radius_um,
        **look,
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
