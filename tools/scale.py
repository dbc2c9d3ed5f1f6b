"""Object scale: how large the objects in an image are, estimated from the image itself.

Segmenters and detectors need a size (a smoothing width, a seed distance, a minimum area, the
input scale of a network) and that size depends on the objects. :func:`estimate_object_scale`
measures it, so that a call with nothing but the image is right from 3 to 30 px radius;
:func:`scale_defaults` turns the estimate into the parameters the tools take.

The method is Lindeberg's scale selection with the scale-normalised Laplacian of Gaussian
(LoG). For a bright disc of radius ``r`` the response ``-sigma^2 * LoG`` at its centre is
largest at ``sigma = r / sqrt(d)`` (``d`` = 2 or 3 axes), whatever the disc's brightness, so the
maxima of the response over position and scale give each object's centre and radius. The LoG is
a band-pass filter: a smooth uneven background, which changes slowly compared to the objects,
adds almost nothing to it, and noise is averaged out at the object's own scale. Responses at
wide scales are computed on a block-averaged copy of the image (a pyramid), so the cost is about
that of two full-size filters; 2D images above a megapixel are measured on four
0.075-megapixel crops.

Chosen by measurement against the sizes of a smoothed Otsu mask's components (median
equivalent radius), on generated discs with known radii (``evals/toolbench/scale.py`` and six
seeded images per condition, 2026-12-01): separated discs of radius 3-30 px, both within 5 %
(the LoG slightly under, the mask slightly over); 80 blobs of radius 5-8 px, 30 % of them
overlapping, LoG 1.5 % mean error, mask components 8.8 % (touching objects merge); 40 blobs on
a ramp background rising by the objects' full contrast, LoG 2.3 %, mask components 78 %
(a global threshold follows the ramp). A granulometry (openings of growing size) was not
tried: it needs one morphological opening per size, slower than the pyramid.
"""

from __future__ import annotations

import functools
import itertools
import math
from typing import Annotated, TypedDict

import numpy as np
from annotated_types import Ge, Gt
from scipy import ndimage as ndi
from scipy.spatial import cKDTree

from tools.checks import check_image, check_spacing
from tools.errors import InputError
from tools.registry import tool
from tools.types import Image, PixelSize

_SCALE_RATIO = 2 ** 0.25  # four scales per octave: radius steps of 19 %
_CROP_ABOVE = 1_000_000  # larger images are measured on crops (speed, not accuracy) ...
_CROP_PIXELS = 300_000  # ... of this many pixels in all
_MIN_GRID_SIGMA = 1.5  # pyramid: each scale is filtered at a width of 1.5-3 grid pixels
_NOISE_MADS = 5.0  # a response must stand this many robust SDs above the noise
_MIN_CONTRAST = 0.05  # ... and be at least 5 % of the image's intensity range
_RELATIVE = 0.5  # ... and at least half the strong objects' response (drops edges, texture)


class ObjectScale(TypedDict):
    """The estimated size of the objects in an image (a plain dict with these keys).

    Radii are in pixels along the image's last axis (X); in 3D with an anisotropic pixel
    size, the radius along Z in Z-pixels is ``radius * spacing_x / spacing_z``.
    """

    radius: float
    """Typical (median) object radius in X-pixels; NaN when no object was found."""
    radius_low: float
    """25th percentile of the objects' radii."""
    radius_high: float
    """75th percentile of the objects' radii."""
    spread: float
    """Relative spread of the radii (robust SD of log radius; 0.1 = about 10 %)."""
    n_objects: int
    """How many objects the estimate rests on."""
    sure: bool
    """False when the estimate should not be trusted (see ``reason``)."""
    reason: str
    """What was measured, or why it is unsure: no contrast, too few objects, ..."""
    radius_physical: float | None
    """The typical radius in the pixel size's unit, when the image is calibrated."""
    unit: str | None
    """That unit."""


def _unsure(reason: str) -> ObjectScale:
    nan = float("nan")
    return ObjectScale(radius=nan, radius_low=nan, radius_high=nan, spread=nan, n_objects=0,
                       sure=False, reason=reason, radius_physical=None, unit=None)


def _spacing(ndim: int, pixel_size: PixelSize | None) -> np.ndarray:
    if pixel_size is None or not pixel_size.calibrated or len(pixel_size.spacing) != ndim:
        return np.ones(ndim)
    return np.asarray(check_spacing(pixel_size.spacing, ndim), dtype=float)


def _crops(shape: tuple[int, ...]) -> list[tuple[slice, ...]]:
    """The whole image, or four (2D) / eight (3D) evenly spread crops of a large one."""
    total = math.prod(shape)
    # A 3D stack is cropped only when very large: its crops must stay several objects deep.
    if total <= (_CROP_ABOVE if len(shape) == 2 else 8 * _CROP_ABOVE):
        return [tuple(slice(None) for _ in shape)]
    n_crops = 2 ** len(shape)
    side = [round(n * (_CROP_PIXELS / n_crops / total) ** (1 / len(shape))) for n in shape]
    side = [max(min(s, n), min(n, 64)) for s, n in zip(side, shape, strict=True)]
    starts = [
        sorted({0, max(n - s, 0) // 3, 2 * max(n - s, 0) // 3})[-2:] if n > s else [0]
        for n, s in zip(shape, side, strict=True)
    ]
    return [
        tuple(slice(a, a + s) for a, s in zip(corner, side, strict=True))
        for corner in itertools.product(*starts)
    ]


def _downsample(data: np.ndarray, factors: tuple[int, ...]) -> np.ndarray:
    """Block means over ``factors`` (the trailing remainder of each axis is dropped)."""
    if all(f == 1 for f in factors):
        return data
    trimmed = data[tuple(slice(0, (n // f) * f) for n, f in zip(data.shape, factors,
                                                                 strict=True))]
    shape = []
    for n, f in zip(trimmed.shape, factors, strict=True):
        shape += [n // f, f]
    return trimmed.reshape(shape).mean(axis=tuple(range(1, 2 * data.ndim, 2)))


def _normalised_log(grid: np.ndarray, grid_sigmas: tuple[float, ...]) -> np.ndarray:
    """``-sum_i s_i^2 d^2/dx_i^2 (G_s * grid)``: the scale-normalised LoG, bright blobs > 0."""
    out = np.zeros(grid.shape, dtype=np.float32)
    for axis in range(grid.ndim):
        order = [0] * grid.ndim
        order[axis] = 2
        out -= grid_sigmas[axis] ** 2 * ndi.gaussian_filter(
            grid, grid_sigmas, order=order, mode="nearest", output=np.float32
        )
    return out


def noise_level(data: np.ndarray) -> float:
    """Robust SD of pixel-to-pixel noise: MAD of the 2x2 checkerboard difference of the last axes.

    The difference ``(a - b - c + d) / 2`` of a 2x2 block cancels any locally linear signal
    and keeps independent noise at its SD; the median absolute value ignores edges.
    """
    if data.ndim < 2 or min(data.shape[-2:]) < 2:
        return 0.0
    step = max(1, int(math.sqrt(data.size / 2_000_000)))
    sub = data[..., ::step, ::step] if step > 1 else data
    a, b = sub[..., :-1:2, :-1:2], sub[..., 1::2, :-1:2]
    c, d = sub[..., :-1:2, 1::2], sub[..., 1::2, 1::2]
    n0, n1 = (min(x.shape[-2] for x in (a, b, c, d)), min(x.shape[-1] for x in (a, b, c, d)))
    diff = (a[..., :n0, :n1] - b[..., :n0, :n1] - c[..., :n0, :n1] + d[..., :n0, :n1]) / 2
    return float(1.4826 * np.median(np.abs(diff)))


def correlated_noise_level(data: np.ndarray, *, step: int = 6,
                           dark_objects: bool = False) -> float:
    """Noise SD as white pixel noise that would leave the same noise after a 1 px blur.

    :func:`noise_level` compares neighbouring pixels, so it misses noise that is correlated
    over a few pixels, which is what a denoiser leaves: after the wavelet denoiser its figure
    is 10-50x too small, and the smooth blotches left pass every noise guard as objects. Here
    the image is blurred by 1 px, and the 2x2 checkerboard difference is taken between pixels
    ``step`` apart on blocks that lie in the background (below Otsu's threshold, above it
    with ``dark_objects``, 2 px away from it); converted back to white pixel noise, this
    equals :func:`noise_level` on white noise and exceeds it on correlated noise. Returns the
    larger of the two. Large images are measured on a central crop (512 x 512 in 2D, 128^3
    in 3D).

    Parameters
    ----------
    data : ([P, ]M, N) ndarray
        Grey image, 2D or 3D.
    step : int
        Distance in pixels between the compared pixels: noise correlated over up to about
        this many pixels is seen.
    dark_objects : bool
        True when the objects are darker than the background.

    Returns
    -------
    float
        Noise SD in intensity units, as white pixel noise.

    Examples
    --------
    >>> from tools.synthetic import blobs
    >>> from tools.denoise import denoise_wavelet
    >>> image = blobs(10, radius=(4.0, 8.0), noise=0.15, seed=1).image
    >>> round(noise_level(image), 2), round(correlated_noise_level(image), 2)
    (0.15, 0.15)
    >>> smooth = denoise_wavelet(image)
    >>> bool(noise_level(smooth) < 0.02 < 0.1 < correlated_noise_level(smooth))
    True
    """
    from skimage.filters import threshold_otsu

    white = noise_level(data)
    if data.ndim < 2 or min(data.shape[-2:]) <= 2 * step + 4:
        return white
    side = 512 if data.ndim == 2 else 128
    crop = tuple(slice(max(0, (n - side) // 2), max(0, (n - side) // 2) + side)
                 for n in data.shape)
    blurred = ndi.gaussian_filter(np.asarray(data[crop], dtype=np.float32), 1.0, mode="nearest")
    if float(blurred.min()) == float(blurred.max()):
        return white
    split = threshold_otsu(blurred)
    background = ndi.binary_erosion(blurred >= split if dark_objects else blurred <= split,
                                    iterations=2)
    a, b = blurred[..., :-step, :-step], blurred[..., step:, :-step]
    c, d = blurred[..., :-step, step:], blurred[..., step:, step:]
    inside = (background[..., :-step, :-step] & background[..., step:, :-step]
              & background[..., :-step, step:] & background[..., step:, step:])
    if int(inside.sum()) < 100:
        return white
    blurred_sd = 1.4826 * float(np.median(np.abs(a[inside] - b[inside] - c[inside] + d[inside])))
    # A 1 px Gaussian divides the SD of white noise by (2 sqrt(pi))^(d/2).
    return max(white, blurred_sd / 2 * (2 * math.sqrt(math.pi)) ** (data.ndim / 2))


@functools.lru_cache(maxsize=256)
def _noise_gain(grid_sigmas: tuple[float, ...]) -> float:
    """SD of :func:`_normalised_log` of unit white noise at these grid widths (measured once)."""
    side = int(min(96, max(24, 8 * max(grid_sigmas))))
    side = side if len(grid_sigmas) == 2 else min(side, 40)
    noise = np.random.default_rng(0).standard_normal((side,) * len(grid_sigmas))
    response = _normalised_log(noise.astype(np.float32), grid_sigmas)
    margin = tuple(slice(min(int(3 * s), side // 3), side - min(int(3 * s), side // 3))
                   for s in grid_sigmas)
    return float(response[margin].std())


def _box_max(data: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Maximum ``(n,)`` of ``data`` over the 3x3 (3x3x3) box around each of ``points`` ``(n, d)``,
    the edge repeated beyond the array (``ndi.maximum_filter(size=3, mode="nearest")`` there).

    Only a few percent of a response stand above the noise floor, so reading their boxes
    costs less than filtering the whole response.
    """
    around = np.clip(points[:, None, :] + _box_offsets(data.ndim), 0, np.asarray(data.shape) - 1)
    return data[tuple(np.moveaxis(around, -1, 0))].max(axis=1)


@functools.cache
def _box_offsets(ndim: int) -> np.ndarray:
    """The ``3**ndim`` offsets ``(3**ndim, ndim)`` of a pixel's box, itself included."""
    return np.asarray(list(itertools.product((-1, 0, 1), repeat=ndim)), dtype=np.int64)


def _candidates(
    data: np.ndarray, sigmas: np.ndarray, spacing: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scale-space maxima of one (cropped, normalised) image.

    Returns positions (n, d) in pixels of ``data``, the refined scale (sigma in X-pixels) and
    the response strength of each maximum.
    """
    ndim = data.ndim
    noise = correlated_noise_level(data)
    grids: dict[tuple[int, ...], np.ndarray] = {}
    layers = []  # (response, factors) per scale
    for sigma in sigmas:
        axis_sigma = sigma * spacing[-1] / spacing
        factors = tuple(
            int(2 ** max(0, math.floor(math.log2(max(s / _MIN_GRID_SIGMA, 1.0)))))
            for s in axis_sigma
        )
        # Never shrink an axis below a few grid points.
        factors = tuple(max(1, min(f, n // 8)) for f, n in zip(factors, data.shape, strict=True))
        if factors not in grids:
            grids[factors] = _downsample(data, factors)
        grid = grids[factors]
        grid_sigmas = tuple(float(s / f) for s, f in zip(axis_sigma, factors, strict=True))
        # Block means of f pixels divide the noise SD by sqrt(f).
        floor = _NOISE_MADS * noise / math.sqrt(math.prod(factors)) * _noise_gain(grid_sigmas)
        layers.append((_normalised_log(grid, grid_sigmas), np.asarray(factors), floor))
    positions, scales, strengths = [], [], []
    for j, (response, factors, noise_floor) in enumerate(layers):
        if j == 0:
            continue  # pixel-sized grain and noise peak at the finest scale; objects do not
        floor = max(noise_floor, _MIN_CONTRAST)
        above = np.argwhere(response > floor)
        peaks = above[response[tuple(above.T)] == _box_max(response, above)]
        if not len(peaks):
            continue
        value = response[tuple(peaks.T)]
        centre = peaks * factors + (factors - 1) / 2.0  # in pixels of data
        neighbours = []
        keep = np.ones(len(peaks), dtype=bool)
        for k in (j - 1, j + 1):
            if not 0 <= k < len(layers):
                neighbours.append(None)
                continue
            other, f_other, _ = layers[k]
            q = np.rint((centre - (f_other - 1) / 2.0) / f_other).astype(np.int64)
            q = np.clip(q, 0, np.asarray(other.shape) - 1)
            keep &= value >= _box_max(other, q)
            neighbours.append(other[tuple(q.T)])
        sigma = np.full(len(peaks), sigmas[j])
        if neighbours[0] is not None and neighbours[1] is not None:
            minus, plus = neighbours
            curvature = minus - 2 * value + plus
            with np.errstate(divide="ignore", invalid="ignore"):
                step = np.where(curvature < 0, 0.5 * (minus - plus) / curvature, 0.0)
            sigma = sigma * _SCALE_RATIO ** np.clip(np.nan_to_num(step), -0.5, 0.5)
        positions.append(centre[keep])
        scales.append(sigma[keep])
        strengths.append(value[keep])
    if not positions:
        return np.empty((0, ndim)), np.empty(0), np.empty(0)
    return np.concatenate(positions), np.concatenate(scales), np.concatenate(strengths)


def _prune(
    positions: np.ndarray, radii: np.ndarray, strengths: np.ndarray, spacing: np.ndarray
) -> np.ndarray:
    """Indices of the maxima kept: a maximum inside a stronger kept one's disc is dropped.

    The rim of a large flat object and texture inside it give weaker maxima at small scales,
    near or inside the object's own (stronger) maximum: a much smaller maximum (under half the
    radius) within 1.2 radii goes, and any maximum within 0.9 radii. A neighbouring object of
    similar size, whose centre lies outside that radius, stays.
    """
    order = np.argsort(-strengths, kind="stable")[:20_000]
    physical = positions * spacing
    tree = cKDTree(physical)
    suppressed = np.zeros(len(positions), dtype=bool)
    kept = []
    for i in order:
        if suppressed[i]:
            continue
        kept.append(i)
        reach = radii[i] * spacing[-1]
        near = np.asarray(tree.query_ball_point(physical[i], 1.2 * reach), dtype=np.int64)
        if near.size:
            distance = np.linalg.norm(physical[near] - physical[i], axis=1)
            suppressed[near[(distance < 0.9 * reach) | (radii[near] < 0.5 * radii[i])]] = True
    chosen = np.asarray(kept, dtype=np.int64)
    # Texture inside an object (nucleoli, the relief of a coin) can respond more strongly than
    # the object itself: a much smaller maximum inside a larger one of at least half its
    # strength is part of that object, not an object of its own.
    inner = np.zeros(len(chosen), dtype=bool)
    sub = cKDTree(physical[chosen])
    smallest = float(radii[chosen].min()) if len(chosen) else 0.0
    for a in np.argsort(-radii[chosen]):
        i = chosen[a]
        if radii[i] < 2 * smallest:
            break  # sorted by radius: no smaller one can hold a maximum under half its size
        if inner[a]:
            continue
        for b in sub.query_ball_point(physical[i], radii[i] * spacing[-1]):
            j = chosen[b]
            if radii[j] < 0.5 * radii[i] and strengths[i] >= 0.5 * strengths[j]:
                inner[b] = True
    return chosen[~inner]


@tool(category="measure")
def estimate_object_scale(
    image: Image,
    min_radius: Annotated[float, Gt(0)] = 1.5,
    max_radius: Annotated[float, Gt(0)] | None = None,
    dark_objects: bool = False,
    min_objects: Annotated[int, Ge(1)] = 5,
    pixel_size: PixelSize | None = None,
) -> ObjectScale:
    """Estimate the typical radius of the objects in an image, and its spread, from the image.

    Finds blob-like objects as maxima of the scale-normalised Laplacian of Gaussian over
    position and scale (Lindeberg's scale selection); each maximum gives an object's radius
    (``sqrt(2) * sigma`` in 2D, ``sqrt(3) * sigma`` in 3D). The median over the objects is the
    typical radius. Robust to a smooth uneven background and to noise; says when it is unsure
    (no contrast, fewer than ``min_objects`` objects). Segmenters use it when no size is given.

    Parameters
    ----------
    image : Image
        Grey image, 2D (YX) or 3D (ZYX); bright objects on a darker background unless
        ``dark_objects``.
    min_radius : float
        Smallest object radius looked for, in pixels along X.
    max_radius : float, optional
        Largest object radius looked for, in pixels along X; an eighth of the image's
        smallest side (in X-pixels) when left out.
    dark_objects : bool
        True for dark objects on a bright background (e.g. brightfield).
    min_objects : int
        Fewer objects than this make the estimate unsure (it is still given).

    Returns
    -------
    ObjectScale
        A dict: ``radius`` (median, X-pixels), ``radius_low`` / ``radius_high`` (25th / 75th
        percentiles), ``spread`` (relative), ``n_objects``, ``sure``, ``reason``, and
        ``radius_physical`` with its ``unit`` when the pixel size is known.

    Notes
    -----
    For a disc of radius ``r`` convolved with a Gaussian, ``-sigma^2 LoG`` at the centre peaks
    at ``sigma = r / sqrt(d)`` (Lindeberg 1998). Scales are four per octave from
    ``min_radius`` to ``max_radius``; wide scales are filtered on block-averaged copies of the
    image. Maxima must exceed five robust noise SDs of their scale's response, 5 % of the
    image's intensity range, and half the strong objects' response (90th percentile); a
    maximum inside a stronger one's radius (rim, texture) is dropped, and so is one at the
    finest scale (pixel grain). Images above a megapixel (3D: 8 megavoxels) are measured on
    four (3D: eight) evenly spread crops of 0.3 megapixels in all. Objects bigger than an
    eighth of the image (of a crop) are not measured.

    References
    ----------
    .. [1] T. Lindeberg, "Feature detection with automatic scale selection", International
       Journal of Computer Vision 30(2):79-116, 1998. doi:10.1023/A:1008045108935
    .. [2] T. Lindeberg, "Scale-space theory in computer vision", Kluwer, 1994.

    Examples
    --------
    >>> from tools.synthetic import blobs
    >>> b = blobs(30, radius=(7.0, 9.0), seed=1)
    >>> scale = estimate_object_scale(b.image)
    >>> bool(abs(scale["radius"] - 8.0) < 1.5), scale["sure"]
    (True, True)
    >>> import numpy as np
    >>> estimate_object_scale(np.zeros((64, 64)))["reason"]
    'no contrast: the image is constant'
    """
    data = check_image(image)
    if not np.isfinite(min_radius) or min_radius <= 0:
        raise InputError(f"min_radius must be > 0 pixels, got {min_radius}")
    if max_radius is not None and (not np.isfinite(max_radius) or max_radius < min_radius):
        raise InputError(
            f"max_radius must be a number >= min_radius ({min_radius}), got {max_radius}"
        )
    if min_objects < 1:
        raise InputError(f"min_objects must be >= 1, got {min_objects}")
    spacing = _spacing(data.ndim, pixel_size)
    ndim = data.ndim
    # The smallest side in X-pixels bounds the largest measurable object.
    extent_x = min(n * s / spacing[-1] for n, s in zip(data.shape, spacing, strict=True))
    crops = _crops(data.shape)
    crop_extent = min(
        (len(range(*c.indices(n))) * s / spacing[-1])
        for c, n, s in zip(crops[0], data.shape, spacing, strict=True)
    )
    top = min(extent_x, crop_extent) / 8 if max_radius is None else float(max_radius)
    if top < min_radius:
        return _unsure(
            f"image too small to measure objects: its smallest side is {extent_x:.0f} px"
        )
    sample = data.ravel()[:: max(1, data.size // 500_000)]
    low, high = np.percentile(sample, [1.0, 99.8])
    if high <= low:
        low, high = float(sample.min()), float(sample.max())
    if high <= low:
        return _unsure("no contrast: the image is constant")
    sqrt_d = math.sqrt(ndim)
    # A Gaussian derivative narrower than half a pixel along some axis (Z of an anisotropic
    # stack) is a bare pixel difference and answers every edge: start where all axes resolve.
    sigma_lo = max(min_radius / sqrt_d, 0.5 * float(spacing.max() / spacing[-1]))
    sigma_hi = max(top / sqrt_d, sigma_lo * _SCALE_RATIO ** 2)
    count = 1 + max(2, math.ceil(math.log(sigma_hi / sigma_lo) / math.log(_SCALE_RATIO)))
    sigmas = sigma_lo * _SCALE_RATIO ** np.arange(count)
    found_pos, found_sigma, found_strength = [], [], []
    for crop in crops:
        part = (data[crop].astype(np.float32) - np.float32(low)) / np.float32(high - low)
        if dark_objects:
            part = 1.0 - part
        pos, sig, strength = _candidates(part, sigmas, spacing)
        offset = np.array([c.indices(n)[0] for c, n in zip(crop, data.shape, strict=True)])
        found_pos.append(pos + offset)
        found_sigma.append(sig)
        found_strength.append(strength)
    positions = np.concatenate(found_pos)
    sigma = np.concatenate(found_sigma)
    strength = np.concatenate(found_strength)
    if not len(positions):
        return _unsure("no objects stand out from the background and noise")
    radii = sigma * sqrt_d
    kept = _prune(positions, radii, strength, spacing)
    strong = strength[kept]
    reference = float(np.percentile(strong, 90))
    kept = kept[strong >= _RELATIVE * reference]
    radii = radii[kept]
    # Maxima at the ends of the scale range are objects outside it: report, never extrapolate.
    radius = float(np.median(radii))
    q25, q75 = (float(v) for v in np.percentile(radii, [25, 75]))
    log_r = np.log(radii)
    spread = float(np.subtract(*np.percentile(log_r, [75, 25])) / 1.349) if len(radii) > 1 else 0.0
    n = len(radii)
    across = 2 * radius
    if n < min_objects:
        sure, reason = False, (
            f"only {n} object{'s' if n != 1 else ''} found (fewer than {min_objects}): "
            f"about {across:.0f} px across, unsure"
        )
    elif radius >= 0.97 * top:
        sure, reason = False, (
            f"objects at least {across:.0f} px across, the largest size looked for; give "
            "max_radius or a size"
        )
    else:
        sure, reason = True, f"{n} objects, about {across:.0f} px across"
    calibrated = pixel_size is not None and pixel_size.calibrated and len(
        pixel_size.spacing) == ndim
    return ObjectScale(
        radius=radius, radius_low=q25, radius_high=q75, spread=spread, n_objects=n, sure=sure,
        reason=reason,
        radius_physical=radius * float(spacing[-1]) if calibrated else None,
        unit=pixel_size.unit if calibrated and pixel_size is not None else None,
    )


def radius_from_image(
    data: np.ndarray, pixel_size: PixelSize | None = None, *, dark_objects: bool = False
) -> ObjectScale | None:
    """The object scale of an already checked image for a tool's defaults; None if unknown.

    An estimate from even one object is used (a tool needs some size); whether it was sure is
    in the returned dict, and the tools say so in their recorded choices.
    """
    if min(data.shape) < 3:
        return None
    scale = estimate_object_scale(data, dark_objects=dark_objects, pixel_size=pixel_size)
    return scale if scale["n_objects"] > 0 and np.isfinite(scale["radius"]) else None


def describe(scale: ObjectScale | None) -> str:
    """The reason text of a choice derived from an estimate: "estimated: objects about ..."."""
    if scale is None:
        return "no object size could be estimated from the image; the tool's fixed default"
    text = f"estimated: objects about {2 * scale['radius']:.0f} px across"
    return text if scale["sure"] else f"{text} (unsure: {scale['reason']})"
