"""Segmentation: turn an intensity image into an instance label image, and clean label images.

All tools take 2D (``YX``) or 3D (``ZYX``) arrays. Smoothing widths are given in pixels along
``X``; when the image's pixel size is known and anisotropic (a z step larger than the lateral
one), the width along each other axis is scaled by ``spacing_x / spacing_axis`` so that the blur
is isotropic in physical space. Without calibration every axis gets the same width in pixels.
"""

from __future__ import annotations

import functools
import math
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from annotated_types import Ge, Gt
from scipy import ndimage as ndi
from skimage import exposure
from skimage import filters as skfilters
from skimage.feature import peak_local_max
from skimage.segmentation import watershed

from tools.checks import check_image, check_labels, check_spacing
from tools.choices import record_choice
from tools.errors import InputError
from tools.registry import tool
from tools.scale import ObjectScale, describe, radius_from_image
from tools.types import Image, Labels, PixelSize, Table

ThresholdMethod = Literal["otsu", "li", "triangle", "yen"]
_THRESHOLDS = {
    "otsu": skfilters.threshold_otsu,
    "li": skfilters.threshold_li,
    "triangle": skfilters.threshold_triangle,
    "yen": skfilters.threshold_yen,
}


# -- helpers shared by the tools ------------------------------------------------------------


def check_sigma(value: float, name: str, *, allow_zero: bool = True) -> float:
    """Refuse a negative (or, unless allowed, zero) smoothing width with a clear message."""
    value = float(value)
    if not np.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0 (0 = no smoothing)" if allow_zero else "> 0"
        raise InputError(f"{name} must be {bound} pixels, got {value}")
    return value


# How the defaults follow the objects' radius r (X-pixels), measured on evals/toolbench/scale.py
# (discs of radius 3-30 px, apart and touching) and the blob-count benchmark.
SPOT_SIGMA_PER_RADIUS = 0.4  # voronoi-Otsu seeds: one maximum per object, not per texture grain
OUTLINE_SIGMA_PER_RADIUS = 0.25  # voronoi-Otsu outline: noise gone, outline kept
SMOOTH_SIGMA_PER_RADIUS = 0.2  # threshold/watershed blur
SEED_DISTANCE_PER_RADIUS = 0.5  # watershed seeds: closer maxima are one object
WATERSHED_SEED_DISTANCE_PER_RADIUS = 0.8  # seeded_watershed on its own: every region is split
SEED_DEPTH_PER_RADIUS = 0.5  # watershed seeds lie at least this deep inside the foreground
MIN_AREA_FRACTION = 0.15  # smallest object kept: this fraction of the small objects' area
# Smallest dim object (above the triangle threshold only): a real one is whole there, while the
# blotches a denoiser leaves are a fraction of an object (counting design set, "denoised").
DIM_MIN_AREA_FRACTION = 0.5


class _Estimate:
    """The object scale of one image, measured once and only if some default needs it."""

    def __init__(self, data: np.ndarray, pixel_size: PixelSize | None, *,
                 dark_objects: bool = False) -> None:
        self._args = (data, pixel_size, dark_objects)
        self._scale: ObjectScale | None = None
        self._done = False

    @property
    def scale(self) -> ObjectScale | None:
        if not self._done:
            data, pixel_size, dark = self._args
            self._scale, self._done = radius_from_image(data, pixel_size, dark_objects=dark), True
        return self._scale

    def sigma(self, name: str, per_radius: float, fallback: float, *,
              low: float = 1.0, high: float = 16.0) -> float:
        """``per_radius * r`` clipped to ``[low, high]``, recorded; ``fallback`` if unknown."""
        scale = self.scale
        value = fallback if scale is None else float(
            np.clip(per_radius * scale["radius"], low, high))
        value = round(value, 2)
        record_choice(name, value, describe(scale))
        return value

    def min_size(self, ndim: int, pixel_size: PixelSize | None) -> int:
        """Smallest object kept, in pixels: a fraction of a small object's area (volume)."""
        scale = self.scale
        if scale is None:
            record_choice("min_size", 1, describe(scale))
            return 1
        value = max(1, int(MIN_AREA_FRACTION * _object_area(scale["radius_low"], ndim,
                                                            pixel_size)))
        record_choice("min_size", value, describe(scale))
        return value


def _drop_small(labels: np.ndarray, min_size: int) -> np.ndarray:
    if min_size <= 1:
        return labels
    return _keep_labels(labels, np.bincount(labels.ravel()) >= min_size)


def _drop_specks(mask: np.ndarray, min_size: int) -> np.ndarray:
    """The foreground without connected regions smaller than ``min_size`` (noise specks).

    Applied before objects are split, so a split never loses the pieces of a large object.
    """
    if min_size <= 1:
        return mask
    return _label_without_specks(mask, min_size)[0] > 0


def _label_without_specks(mask: np.ndarray, min_size: int,
                          structure: np.ndarray | None = None, *,
                          apart_from: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Connected regions of ``mask`` of ``min_size`` or more pixels, 1..N, and their sizes (N,).

    ``structure`` says which neighbours touch; full connectivity when left out. With
    ``apart_from``, a mask, only the regions that hold none of its pixels are kept.
    """
    if structure is None:
        structure = ndi.generate_binary_structure(mask.ndim, mask.ndim)
    regions, _ = ndi.label(mask, structure=structure)
    sizes = np.bincount(regions.ravel())
    keep = sizes >= min_size
    if apart_from is not None:
        keep &= np.bincount(regions[apart_from], minlength=sizes.size) == 0
    if keep[1:].all():
        return regions, sizes[1:]
    return _keep_labels(regions, keep), sizes[1:][keep[1:]]


def neighbours(ndim: int, pixel_size: PixelSize | None = None) -> np.ndarray:
    """Which neighbours of a pixel touch it: all of them, except across coarse z steps.

    In 2D and on isotropic voxels every neighbour (8, 26) touches. When the z step is at
    least twice the pixel, a voxel touches only the one straight above or below it in the
    next plane: a diagonal step there crosses more than a z step of space, and 26-connectivity
    joined spheres 3-4 px apart (oblique to the planes) in the scale sweep's stacks.
    """
    full = ndi.generate_binary_structure(ndim, ndim)
    if ndim != 3 or pixel_size is None or not pixel_size.calibrated \
            or len(pixel_size.spacing) != 3:
        return full
    spacing = check_spacing(pixel_size.spacing, 3)
    if spacing[0] < 2 * max(spacing[1], spacing[2]):
        return full
    coarse = np.zeros_like(full)
    coarse[1] = full[1]
    coarse[0, 1, 1] = coarse[2, 1, 1] = True
    return coarse


def axis_sigmas(
    sigma: float, ndim: int, pixel_size: PixelSize | None = None
) -> tuple[float, ...]:
    """Per-axis Gaussian widths for a width of ``sigma`` pixels along the last axis (X).

    With a calibrated, anisotropic pixel size the width along axis ``i`` becomes
    ``sigma * spacing[-1] / spacing[i]``: the same physical width on every axis.
    """
    if pixel_size is None or not pixel_size.calibrated or len(pixel_size.spacing) != ndim:
        return (float(sigma),) * ndim
    spacing = check_spacing(pixel_size.spacing, ndim)
    return tuple(float(sigma) * spacing[-1] / s for s in spacing)


def axis_sampling(ndim: int, pixel_size: PixelSize | None = None) -> tuple[float, ...] | None:
    """Per-axis step in pixels along the last axis (X), for distance maps; None when isotropic.

    Radii, seed depths and seed distances are in X-pixels (the unit of the estimated object
    scale), so a distance map is measured in X-pixels too: in physical units a 0.25 µm pixel
    would make every object look four times shallower than its seeds must be.
    """
    if pixel_size is None or not pixel_size.calibrated or len(pixel_size.spacing) != ndim:
        return None
    spacing = check_spacing(pixel_size.spacing, ndim)
    return tuple(s / spacing[-1] for s in spacing)


def smooth(data: np.ndarray, sigmas: tuple[float, ...]) -> np.ndarray:
    """Gaussian blur with per-axis widths in pixels; no copy when every width is 0."""
    if not any(sigmas):
        return data
    return ndi.gaussian_filter(data, sigmas, output=np.float32, mode="nearest")


def _require_contrast(data: np.ndarray) -> None:
    if float(data.min()) == float(data.max()):
        raise InputError("image is constant: there is nothing to segment")


def threshold_value(data: np.ndarray, method: str) -> float:
    """The automatic threshold of ``data`` by ``method`` (otsu, li, triangle or yen)."""
    if method not in _THRESHOLDS:
        raise InputError(f"unknown threshold method {method!r}; use one of {sorted(_THRESHOLDS)}")
    _require_contrast(data)
    return float(_THRESHOLDS[method](data))


def _triangle_level(counts: np.ndarray, centers: np.ndarray) -> float:
    """Zack's triangle threshold of a histogram, as ``skimage.filters.threshold_triangle``.

    A line joins the histogram's peak to the far end of its longer tail; the threshold is
    the bin centre farthest below that line. Taken from a histogram already made (a second
    one of a large image costs more than the rest); the distances are rounded as
    scikit-image rounds them, whose choice between equally distant bins they then repeat.
    """
    counts = np.asarray(counts, dtype=np.int64)
    held = np.flatnonzero(counts)
    peak, low, high = int(np.argmax(counts)), int(held[0]), int(held[-1])
    if low == high:
        return float(centers[low])
    flip = peak - low < high - peak  # the tail to the right is the longer one
    if flip:
        counts = counts[::-1]
        peak, low = counts.size - 1 - peak, counts.size - 1 - high
    offset = np.arange(peak - low)
    # Distance of bin low + x below the line from (low, 0) to (peak, height), as the unit
    # normal (height, -width) / norm gives it.
    height, width = float(counts[peak]), float(peak - low)
    norm = math.sqrt(height**2 + width**2)
    below = height / norm * offset - width / norm * counts[low + offset]
    level = int(np.argmax(below)) + low
    return float(centers[counts.size - 1 - level if flip else level])


def foreground_threshold(
    raw: np.ndarray, blurred: np.ndarray, sigmas: tuple[float, ...], method: str, *,
    dark_objects: bool = False,
) -> float:
    """The automatic threshold of ``blurred``, raised above the noise of the background.

    With only a few objects in a large noisy image, Otsu's (or any histogram) threshold can
    fall inside the background's noise and turn it into hundreds of speckles. The threshold
    is therefore kept at least five noise SDs (of the blurred image) from the background's
    median; on an image with real objects the automatic threshold is far beyond that.
    """
    return foreground_thresholds(raw, blurred, sigmas, (method,), dark_objects=dark_objects)[0]


def foreground_thresholds(
    raw: np.ndarray, blurred: np.ndarray, sigmas: tuple[float, ...], methods: tuple[str, ...],
    *, dark_objects: bool = False,
) -> list[float]:
    """:func:`foreground_threshold` for several methods, with the noise measured once.

    The noise is :func:`tools.scale.correlated_noise_level`: after a denoiser the noise left
    is smooth, and a pixel-to-pixel estimate would let its blotches through as objects.
    """
    from tools.scale import correlated_noise_level

    gain = 1.0
    for s in sigmas:  # SD of white noise after a Gaussian of width s (per axis)
        gain *= 1.0 / math.sqrt(2 * math.sqrt(math.pi) * s) if s > 0.5 else 1.0
    noise = correlated_noise_level(raw, dark_objects=dark_objects) * gain
    sample = blurred.ravel()[:: max(1, blurred.size // 500_000)]
    histogram = None
    if "otsu" in methods and "triangle" in methods:  # one histogram for both
        _require_contrast(blurred)
        histogram = exposure.histogram(blurred.reshape(-1), 256, source_range="image")
    values = []
    for method in methods:
        if histogram is not None and method == "otsu":
            value = float(skfilters.threshold_otsu(hist=histogram))
        elif histogram is not None and method == "triangle":
            value = _triangle_level(*histogram)
        else:
            value = threshold_value(blurred, method)
        if dark_objects:
            background = sample[sample >= value]
            if background.size and noise > 0:
                value = min(value, float(np.median(background)) - 5 * noise)
        else:
            background = sample[sample <= value]
            if background.size and noise > 0:
                value = max(value, float(np.median(background)) + 5 * noise)
        values.append(value)
    return values


def relabel_consecutive(labels: np.ndarray) -> np.ndarray:
    """Renumber labels to ``1..N`` in the order of their old values (0 stays 0), as int32."""
    present = np.bincount(labels.ravel()) > 0
    if present[1:].all():  # already 1..N: nothing to do
        return labels.astype(np.int32, copy=False)
    return _keep_labels(labels, present)


def _keep_labels(labels: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """The labels whose ``keep[value]`` is set, renumbered ``1..N`` in their old order; int32.

    ``keep`` has one entry per value up to ``labels.max()``; the background stays 0 whatever
    ``keep[0]`` says.
    """
    keep = keep.copy()
    keep[0] = False
    lut = np.zeros(len(keep), dtype=np.int32)
    lut[keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.int32)
    return lut[labels]


def _flood_markers(markers: np.ndarray, mask: np.ndarray, min_size: int = 1) -> np.ndarray:
    """Share each foreground region between its markers: each pixel to the nearest marker.

    A watershed of the distance to the nearest marker, restricted to ``mask``, but the
    flooding runs only where a region holds two or more markers: a region with one marker is
    that object, and a region with none becomes an object of its own. On nuclei images most
    regions hold a single marker, which makes this several times faster than flooding the
    whole image.
    """
    structure = ndi.generate_binary_structure(mask.ndim, 1)
    regions, n_regions = ndi.label(mask, structure=structure)
    flat_markers = markers.ravel()
    where = np.flatnonzero(flat_markers)
    ids = flat_markers[where]
    n_markers = int(markers.max()) if where.size else 0
    region_of_marker = np.zeros(n_markers + 1, dtype=np.int64)
    region_of_marker[ids] = regions.ravel()[where]
    per_region = np.bincount(region_of_marker[1:], minlength=n_regions + 1)
    per_region[0] = 0
    lut = np.zeros(n_regions + 1, dtype=np.int32)
    # For a region with one marker, the marker's id names the whole region.
    marker_ids = np.arange(1, n_markers + 1)
    owner = region_of_marker[1:]
    is_single = per_region[owner] == 1
    lut[owner[is_single]] = marker_ids[is_single]
    orphans = np.flatnonzero(per_region == 0)[1:]  # skip background
    lut[orphans] = np.arange(n_markers + 1, n_markers + 1 + orphans.size, dtype=np.int32)
    if min_size > 1:  # foreground regions smaller than this are noise specks: background
        small = np.bincount(regions.ravel(), minlength=n_regions + 1) < min_size
        small[0] = False
        lut[small] = 0
        per_region[small] = 0
    labels = lut[regions]
    slices = ndi.find_objects(regions)
    shared = np.flatnonzero(per_region >= 2)
    # Flooding in order of the distance to the nearest marker splits a region along the
    # Voronoi lines; a flat relief would leave ties to the order of scikit-image's heap.
    parts = []
    # Regions of about one height share a call, so the array they share is mostly theirs.
    for region in shared[np.argsort([slices[r - 1][0].stop - slices[r - 1][0].start
                                     for r in shared], kind="stable")]:
        box = slices[region - 1]
        inside = regions[box] == region
        seeds = np.where(inside, markers[box], 0)
        parts.append((box, inside, seeds, ndi.distance_transform_edt(seeds == 0)))
    for group in range(0, len(parts), FLOOD_GROUP):
        for box, inside, flooded in _flood_side_by_side(parts[group : group + FLOOD_GROUP]):
            labels[box][inside] = flooded[inside]
    return labels


# Regions flooded in one watershed call: a call costs ~0.5 ms before any work, which made the
# calls, one per region, most of the flooding's time at 2048x2048.
FLOOD_GROUP = 32


def _flood_side_by_side(
    parts: list[tuple[tuple[slice, ...], np.ndarray, np.ndarray, np.ndarray]],
) -> list[tuple[tuple[slice, ...], np.ndarray, np.ndarray]]:
    """Watersheds of several ``(box, inside, seeds, relief)`` regions in one call.

    The boxes lie side by side along the last axis, one pixel apart; each flood stays inside
    its own mask, so only pixels equidistant from two markers (the order of the heap) can
    differ from a call per region.
    """
    ndim = parts[0][1].ndim
    extent = [max(p[1].shape[axis] for p in parts) for axis in range(ndim - 1)]
    width = sum(p[1].shape[-1] + 1 for p in parts)
    relief = np.zeros((*extent, width))
    seeds = np.zeros((*extent, width), dtype=np.int32)
    inside = np.zeros((*extent, width), dtype=bool)
    places = []
    start = 0
    for _, mask, marks, depth in parts:
        place = (*(slice(0, n) for n in mask.shape[:-1]),
                 slice(start, start + mask.shape[-1]))
        relief[place], seeds[place], inside[place] = depth, marks, mask
        places.append(place)
        start += mask.shape[-1] + 1
    flooded = watershed(relief, seeds, mask=inside)
    return [(box, mask, flooded[place])
            for (box, mask, _, _), place in zip(parts, places, strict=True)]


def _local_maxima(data: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Label the local maxima (3x3 or 3x3x3 box) of ``data`` inside ``mask``.

    A plateau of equal maxima becomes one marker, so a flat top does not split an object.
    """
    peaks = (data == ndi.maximum_filter(data, size=3, mode="nearest")) & mask
    # Face connectivity, as for the foreground regions: a plateau never spans two regions.
    markers, _ = ndi.label(peaks, structure=ndi.generate_binary_structure(data.ndim, 1))
    return markers


# -- the clEsperanto (OpenCL) backend -------------------------------------------------------


def opencl_gpu_available() -> bool:
    """Whether an OpenCL device of type GPU exists (a CPU device such as PoCL's does not count)."""
    return _gpu_device_name() is not None


@functools.cache
def _gpu_device_name() -> str | None:
    try:
        import pyopencl as cl

        for platform in cl.get_platforms():
            for device in platform.get_devices():
                if device.type & cl.device_type.GPU:
                    return str(device.name)
    except Exception:  # no OpenCL runtime at all, or a broken ICD: no GPU to use
        return None
    return None


def choose_backend(backend: str) -> str:
    """Resolve ``"auto"`` to ``"clesperanto"`` on a real OpenCL GPU, else ``"skimage"``."""
    if backend not in ("auto", "skimage", "clesperanto"):
        raise InputError(f"backend must be 'auto', 'skimage' or 'clesperanto', got {backend!r}")
    if backend == "auto":
        return "clesperanto" if opencl_gpu_available() else "skimage"
    return backend


def _clesperanto():
    try:
        import pyclesperanto_prototype as cle
    except ImportError as exc:  # pragma: no cover - a dependency of the project
        raise InputError(
            "backend 'clesperanto' needs pyclesperanto-prototype and an OpenCL runtime "
            f"(pip install pyclesperanto-prototype pocl-binary-distribution): {exc}"
        ) from None
    problem = clesperanto_problem()
    if problem:
        raise InputError(f"{problem}; use backend='skimage'")
    return cle


@functools.cache
def clesperanto_problem() -> str | None:
    """Why the clEsperanto backend cannot run on this machine, or None when it can.

    The OpenCL device is opened and one small kernel is built and run, once per process: PoCL's
    compiler rejects CPUs newer than its LLVM ("unknown target CPU 'generic'") only when a
    kernel is built, not when the device is listed.
    """
    import pyclesperanto_prototype as cle

    gpu = _gpu_device_name()
    try:
        cle.select_device(gpu if gpu else None, dev_type="gpu" if gpu else None)
    except Exception as exc:
        return f"no OpenCL device could be opened for clEsperanto: {exc}"
    try:
        cle.pull(cle.gaussian_blur(cle.push(np.zeros((4, 4), np.float32)), sigma_x=1.0,
                                   sigma_y=1.0))
    except Exception as exc:
        detail = " ".join(line.strip() for line in str(exc).splitlines()
                          if "error:" in line) or type(exc).__name__
        return (f"the OpenCL device {cle.get_device().name!r} cannot build clEsperanto's "
                f"kernels ({detail})")
    return None


def _voronoi_otsu_clesperanto(
    data: np.ndarray, spot: tuple[float, ...], outline: tuple[float, ...]
) -> np.ndarray:
    cle = _clesperanto()

    def blur(source, sig):  # clEsperanto orders its widths x, y, z
        rev = tuple(reversed(sig)) + (0.0,) * (3 - len(sig))
        return cle.gaussian_blur(source, sigma_x=rev[0], sigma_y=rev[1], sigma_z=rev[2])

    pushed = cle.push(data)
    spots = cle.detect_maxima_box(blur(pushed, spot), radius_x=0, radius_y=0, radius_z=0)
    foreground = cle.threshold_otsu(blur(pushed, outline))
    seeds = cle.binary_and(spots, foreground)
    labels = cle.masked_voronoi_labeling(seeds, foreground)
    return np.asarray(cle.pull(labels)).astype(np.int32)


# -- segmentation tools ---------------------------------------------------------------------


@tool(category="segment")
def voronoi_otsu_labeling(
    image: Image,
    spot_sigma: Annotated[float, Ge(0)] | None = None,
    outline_sigma: Annotated[float, Ge(0)] | None = None,
    backend: Literal["auto", "skimage", "clesperanto"] = "auto",
    min_size: Annotated[int, Ge(1)] | None = None,
    pixel_size: PixelSize | None = None,
) -> Labels:
    """Label touching round objects such as nuclei: Otsu threshold split by Voronoi regions.

    The image is blurred with ``outline_sigma`` and thresholded with Otsu's method to find the
    foreground; it is blurred with ``spot_sigma`` to find one local maximum per object; the
    foreground is then divided between the maxima, each pixel going to the nearest maximum
    inside its foreground region. The method of clEsperanto. The scikit-image backend keeps a
    foreground region that holds no maximum as an object of its own (clEsperanto drops it).

    Parameters
    ----------
    image : Image
        Fluorescence image, 2D or 3D, bright objects on a dark background.
    spot_sigma : float, optional
        Blur before finding object centres, in pixels. Larger merges nearby objects; smaller
        splits large objects. When left out, 0.4 times the object radius estimated from the image
        (:func:`tools.scale.estimate_object_scale`); 2 if no object can be measured.
    outline_sigma : float, optional
        Blur before thresholding, in pixels. Larger gives smoother outlines. When left out, a
        quarter of the estimated radius (at least 1).
    backend : str
        "auto" runs clEsperanto (OpenCL) when a GPU is present and scikit-image otherwise;
        "skimage" or "clesperanto" force one. On a CPU clEsperanto is much slower.
    min_size : int, optional
        Smallest object kept, in pixels (voxels); when left out, 15 % of the area of the small
        objects estimated from the image (1 if none can be measured).

    Returns
    -------
    Labels
        Instance labels (0 background, 1..N objects), same shape as the image.

    References
    ----------
    .. [1] N. Otsu, "A threshold selection method from gray-level histograms", IEEE Trans.
       Systems, Man, and Cybernetics 9(1):62-66, 1979. doi:10.1109/TSMC.1979.4310076
    .. [2] R. Haase et al., "CLIJ: GPU-accelerated image processing for everyone", Nature
       Methods 17:5-6, 2020 (the Voronoi-Otsu labelling of clEsperanto).
    .. [3] T. Lindeberg, "Feature detection with automatic scale selection", International
       Journal of Computer Vision 30(2):79-116, 1998. doi:10.1023/A:1008045108935

    Examples
    --------
    >>> from tools.synthetic import blobs
    >>> b = blobs(20, radius=(9.0, 11.0), overlap=False, seed=2)
    >>> int(voronoi_otsu_labeling(b.image).max())  # sizes estimated from the image
    20
    """
    data = check_image(image)
    if spot_sigma is not None:
        check_sigma(spot_sigma, "spot_sigma")
    if outline_sigma is not None:
        check_sigma(outline_sigma, "outline_sigma")
    _require_contrast(data)
    estimate = _Estimate(data, pixel_size)
    if spot_sigma is None:
        spot_sigma = estimate.sigma("spot_sigma", SPOT_SIGMA_PER_RADIUS, 2.0)
    if outline_sigma is None:
        outline_sigma = estimate.sigma("outline_sigma", OUTLINE_SIGMA_PER_RADIUS, 2.0, high=6.0)
    spot = axis_sigmas(spot_sigma, data.ndim, pixel_size)
    outline = axis_sigmas(outline_sigma, data.ndim, pixel_size)
    if min_size is not None and min_size < 1:
        raise InputError(f"min_size must be >= 1 pixel, got {min_size}")
    if min_size is None:
        min_size = estimate.min_size(data.ndim, pixel_size)
    if choose_backend(backend) == "clesperanto":
        labels = _voronoi_otsu_clesperanto(data, spot, outline)
        return relabel_consecutive(_drop_small(labels, int(min_size)))
    outlined = smooth(data, outline)
    spotted = outlined if spot == outline else smooth(data, spot)
    foreground = outlined > foreground_threshold(data, outlined, outline, "otsu")
    markers = _local_maxima(spotted, foreground)
    return relabel_consecutive(_flood_markers(markers, foreground, int(min_size)))


@tool(category="segment")
def threshold_labeling(
    image: Image,
    method: Literal["otsu", "li", "triangle", "yen", "manual"] = "otsu",
    threshold: float | None = None,
    sigma: Annotated[float, Ge(0)] | None = None,
    dark_objects: bool = False,
    min_size: Annotated[int, Ge(1)] | None = None,
    pixel_size: PixelSize | None = None,
) -> Labels:
    """Segment by a global intensity threshold, then label connected regions.

    Objects that touch each other end up as one label; use voronoi_otsu_labeling or
    seeded_watershed to split them.

    Parameters
    ----------
    image : Image
        Grey image, 2D or 3D.
    method : str
        How to choose the threshold: "otsu" (two classes of similar spread), "li" (minimum
        cross-entropy, good for dim objects), "triangle" (few bright objects on a large dark
        background), "yen", or "manual" (use ``threshold``).
    threshold : float, optional
        Threshold in image intensity units; required with method "manual" and only then.
    sigma : float, optional
        Gaussian blur before thresholding, in pixels; 0 for none. When left out, a fifth of
        the object radius estimated from the image (1 to 2 px, so that objects a few pixels
        apart stay apart; 1 if none can be measured).
    dark_objects : bool
        True when the objects are darker than the background (pixels below the threshold).
    min_size : int, optional
        Smallest region kept, in pixels (voxels); smaller ones are noise. When left out, 15 %
        of the area of the small objects estimated from the image.

    Returns
    -------
    Labels
        Connected regions labelled 1..N: 8-connected in 2D, 26 in 3D, and across planes only
        straight up or down when the z step is at least twice the pixel (:func:`neighbours`).

    References
    ----------
    .. [1] N. Otsu, "A threshold selection method from gray-level histograms", IEEE Trans.
       Systems, Man, and Cybernetics 9(1):62-66, 1979. doi:10.1109/TSMC.1979.4310076
    .. [2] C. H. Li and P. K. S. Tam, "An iterative algorithm for minimum cross entropy
       thresholding", Pattern Recognition Letters 19(8):771-776, 1998.
    .. [3] G. W. Zack, W. E. Rogers and S. A. Latt, "Automatic measurement of sister chromatid
       exchange frequency", J. Histochem. Cytochem. 25(7):741-753, 1977 (triangle).

    Examples
    --------
    >>> from tools.synthetic import blobs
    >>> b = blobs(12, radius=(4.0, 6.0), seed=0)
    >>> int(threshold_labeling(b.image).max())
    12
    """
    data = check_image(image)
    if sigma is not None:
        check_sigma(sigma, "sigma")
    if min_size is not None and min_size < 1:
        raise InputError(f"min_size must be >= 1 pixel, got {min_size}")
    if method == "manual":
        if threshold is None:
            raise InputError("method 'manual' needs a threshold value (in intensity units)")
        if not np.isfinite(threshold):
            raise InputError(f"threshold must be a finite number, got {threshold}")
        value = float(threshold)
    elif threshold is not None:
        raise InputError(
            f"a threshold value was given with method {method!r}; use method 'manual' to set "
            "it yourself, or leave threshold out"
        )
    if method != "manual":
        _require_contrast(data)
    estimate = _Estimate(data, pixel_size, dark_objects=dark_objects)
    if sigma is None:
        sigma = estimate.sigma("sigma", SMOOTH_SIGMA_PER_RADIUS, 1.0, high=2.0)
    if min_size is None:
        min_size = estimate.min_size(data.ndim, pixel_size)
    sigmas = axis_sigmas(sigma, data.ndim, pixel_size)
    blurred = smooth(data, sigmas)
    if method != "manual":
        value = foreground_threshold(data, blurred, sigmas, method, dark_objects=dark_objects)
    mask = blurred < value if dark_objects else blurred > value
    labels, _ = ndi.label(mask, structure=neighbours(data.ndim, pixel_size))
    return relabel_consecutive(_drop_small(labels, int(min_size)))


def _spot_markers(spots: pd.DataFrame, shape: tuple[int, ...], mask: np.ndarray) -> np.ndarray:
    axes = "zyx"[-len(shape):]
    missing = [a for a in axes if a not in spots.columns]
    if missing:
        raise InputError(
            f"the spots table needs columns {list(axes)} (pixel coordinates, as from "
            f"detect_spots); it lacks {missing}"
        )
    coords = np.rint(spots[list(axes)].to_numpy(dtype=float)).astype(np.int64)
    inside = np.all((coords >= 0) & (coords < np.asarray(shape)), axis=1)
    coords = coords[inside]
    coords = coords[mask[tuple(coords.T)]] if coords.size else coords
    markers = np.zeros(shape, dtype=np.int32)
    if len(coords):
        markers[tuple(coords.T)] = np.arange(1, len(coords) + 1, dtype=np.int32)
    return markers


@tool(category="segment")
def seeded_watershed(
    image: Image,
    seeds: Literal["distance", "spots"] = "distance",
    spots: Table | None = None,
    method: ThresholdMethod = "otsu",
    sigma: Annotated[float, Ge(0)] | None = None,
    min_distance: Annotated[int, Ge(1)] | None = None,
    spot_sigma: Annotated[float, Gt(0)] | None = None,
    min_size: Annotated[int, Ge(1)] | None = None,
    pixel_size: PixelSize | None = None,
) -> Labels:
    """Split touching objects by a watershed grown from one seed per object.

    The foreground is found by an automatic threshold. With seeds "distance" the seeds are the
    maxima of the distance to the background (centres of round shapes) and the watershed runs
    on that distance; with seeds "spots" they are bright spots (the given spots table, or
    spots detected with a Laplacian of Gaussian of width ``spot_sigma``) and the watershed runs
    on the blurred intensity.

    Parameters
    ----------
    image : Image
        Grey image, 2D or 3D, bright objects on a dark background.
    seeds : str
        "distance" (shape-based, for round objects of even brightness) or "spots"
        (intensity-based, for objects brighter in their centre).
    spots : Table, optional
        Seed positions (columns y, x and z in 3D, in pixels), e.g. from detect_spots; only
        with seeds "spots". Detected from the image when left out.
    method : str
        Threshold method for the foreground: "otsu", "li", "triangle" or "yen".
    sigma : float, optional
        Gaussian blur before thresholding, in pixels; 0 for none. When left out, a fifth of
        the object radius estimated from the image (1 to 2 px; 1 if none can be measured).
    min_distance : int, optional
        Smallest distance between two seeds, in pixels. When left out, 0.8 times the radius of
        the small objects estimated from the image (at least 2; 5 if none can be measured).
    spot_sigma : float, optional
        Width of the spot detector in pixels when seeds are detected; when left out, the
        estimated radius / sqrt(2) (3 if none can be measured).
    min_size : int, optional
        Smallest object kept, in pixels (voxels); when left out, 15 % of the area of the small
        objects estimated from the image.

    Returns
    -------
    Labels
        Instance labels 1..N; foreground regions without a seed keep a label of their own.

    References
    ----------
    .. [1] L. Vincent and P. Soille, "Watersheds in digital spaces: an efficient algorithm
       based on immersion simulations", IEEE Trans. PAMI 13(6):583-598, 1991.
    .. [2] S. Beucher and F. Meyer, "The morphological approach to segmentation: the
       watershed transformation", in Mathematical Morphology in Image Processing, 1993.

    Examples
    --------
    >>> from tools.synthetic import blobs
    >>> b = blobs(15, radius=(6.0, 8.0), seed=4)
    >>> int(seeded_watershed(b.image).max())
    15
    """
    data = check_image(image)
    if sigma is not None:
        check_sigma(sigma, "sigma")
    if spot_sigma is not None:
        check_sigma(spot_sigma, "spot_sigma", allow_zero=False)
    if seeds not in ("distance", "spots"):
        raise InputError(f"seeds must be 'distance' or 'spots', got {seeds!r}")
    if spots is not None and seeds != "spots":
        raise InputError("a spots table was given: set seeds to 'spots' to use it")
    if min_distance is not None and min_distance < 1:
        raise InputError(f"min_distance must be >= 1 pixel, got {min_distance}")
    if min_size is not None and min_size < 1:
        raise InputError(f"min_size must be >= 1 pixel, got {min_size}")
    _require_contrast(data)
    estimate = _Estimate(data, pixel_size)
    if sigma is None:
        sigma = estimate.sigma("sigma", SMOOTH_SIGMA_PER_RADIUS, 1.0, high=2.0)
    if min_distance is None:
        scale = estimate.scale
        # Alone (no clump test as in segment_objects) the seeds must be further apart.
        min_distance = 5 if scale is None else max(
            2, round(WATERSHED_SEED_DISTANCE_PER_RADIUS * scale["radius_low"]))
        record_choice("min_distance", min_distance, describe(scale))
    if seeds == "spots" and spots is None and spot_sigma is None:
        spot_sigma = estimate.sigma("spot_sigma", 1 / math.sqrt(data.ndim), 3.0, high=24.0)
    if min_size is None:
        min_size = estimate.min_size(data.ndim, pixel_size)
    sigmas = axis_sigmas(sigma, data.ndim, pixel_size)
    blurred = smooth(data, sigmas)
    mask = _drop_specks(blurred > foreground_threshold(data, blurred, sigmas, method),
                        int(min_size))
    footprint = np.ones((2 * int(min_distance) + 1,) * data.ndim, dtype=bool)
    if seeds == "distance":
        if pixel_size is not None and pixel_size.calibrated:
            check_spacing(pixel_size.spacing, data.ndim)  # refuses a wrong length, as before
        sampling = axis_sampling(data.ndim, pixel_size)
        relief = ndi.distance_transform_edt(mask, sampling=sampling).astype(np.float32)
        # A light blur removes the ridges of the distance map that would each seed an object.
        relief = smooth(relief, axis_sigmas(1.0, data.ndim, pixel_size))
        # Seeds at least half a small radius deep: a bump of a noisy outline is no object.
        depth = 0.0 if estimate.scale is None else SEED_DEPTH_PER_RADIUS * estimate.scale[
            "radius_low"]
        peaks = peak_local_max(
            relief, footprint=footprint, labels=mask.astype(np.int32), exclude_border=False,
            threshold_abs=depth,
        )
        markers = _peak_markers(peaks, data.shape)
        relief = -relief
    else:
        if spots is not None:
            markers = _spot_markers(spots, data.shape, mask)
        else:
            spot_sigmas = axis_sigmas(float(spot_sigma or 3.0), data.ndim, pixel_size)
            response = -ndi.gaussian_laplace(data, spot_sigmas, mode="nearest")
            peaks = peak_local_max(
                response, footprint=footprint, labels=mask.astype(np.int32),
                exclude_border=False,
            )
            markers = np.zeros(data.shape, dtype=np.int32)
            markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1, dtype=np.int32)
        relief = -blurred
    labels = watershed(relief, markers, mask=mask)
    orphans, n_orphans = ndi.label(mask & (labels == 0))
    if n_orphans:
        labels = np.where(orphans > 0, orphans + labels.max(), labels)
    return relabel_consecutive(labels)


# -- label clean-up tools -------------------------------------------------------------------


@tool(category="segment")
def remove_small_objects(
    labels: Labels,
    min_size: Annotated[int, Ge(1)] = 30,
    max_size: Annotated[int, Ge(1)] | None = None,
) -> Labels:
    """Remove objects smaller (or larger) than a size, and renumber the rest 1..N.

    Parameters
    ----------
    labels : Labels
        Instance label image, 2D or 3D.
    min_size : int
        Smallest object kept, in pixels (voxels in 3D).
    max_size : int, optional
        Largest object kept, in pixels (voxels in 3D); no upper limit when left out.

    Returns
    -------
    Labels
        The label image without those objects, renumbered 1..N in the old order.

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.zeros((10, 10), dtype=np.int32)
    >>> labels[1:6, 1:6], labels[8, 8] = 1, 2
    >>> remove_small_objects(labels, min_size=5).max()
    np.int32(1)
    """
    check_labels(labels)
    if min_size < 1:
        raise InputError(f"min_size must be >= 1 pixel, got {min_size}")
    if max_size is not None and max_size < min_size:
        raise InputError(f"max_size ({max_size}) is smaller than min_size ({min_size})")
    sizes = np.bincount(labels.ravel())
    keep = sizes >= min_size
    if max_size is not None:
        keep &= sizes <= max_size
    return _keep_labels(labels, keep)


@tool(category="segment")
def remove_border_objects(labels: Labels, border_width: Annotated[int, Ge(1)] = 1) -> Labels:
    """Remove objects that touch the image border (cut, so their size is wrong); renumber 1..N.

    In 3D the first and last planes count as border too.

    Parameters
    ----------
    labels : Labels
        Instance label image, 2D or 3D.
    border_width : int
        Width of the border band, in pixels: objects with a pixel inside it are removed.

    Returns
    -------
    Labels
        The label image without border objects, renumbered 1..N in the old order.

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.zeros((10, 10), dtype=np.int32)
    >>> labels[0:3, 0:3], labels[4:7, 4:7] = 1, 2
    >>> np.unique(remove_border_objects(labels)).tolist()
    [0, 1]
    """
    check_labels(labels)
    if border_width < 1:
        raise InputError(f"border_width must be >= 1 pixel, got {border_width}")
    present = np.bincount(labels.ravel()) > 0
    touching = np.zeros(present.size, dtype=bool)
    for axis in range(labels.ndim):
        width = min(int(border_width), labels.shape[axis])
        for band in (slice(0, width), slice(labels.shape[axis] - width, None)):
            index = [slice(None)] * labels.ndim
            index[axis] = band
            touching[np.unique(labels[tuple(index)])] = True
    return _keep_labels(labels, present & ~touching)


@tool(category="segment")
def fill_holes(labels: Labels) -> Labels:
    """Fill holes inside objects: background enclosed by a single object joins that object.

    Gaps enclosed jointly by several touching objects are left empty, since they belong to
    none of them. Holes are found with 4-connected background in 2D (6 in 3D).

    Parameters
    ----------
    labels : Labels
        Instance label image, 2D or 3D.

    Returns
    -------
    Labels
        The label image with holes filled; labels unchanged.

    Examples
    --------
    >>> import numpy as np
    >>> ring = np.zeros((7, 7), dtype=np.int32)
    >>> ring[1:6, 1:6] = 1
    >>> ring[3, 3] = 0
    >>> int(fill_holes(ring)[3, 3])
    1
    """
    check_labels(labels)
    background = labels == 0
    cross = ndi.generate_binary_structure(labels.ndim, 1)
    pockets, n_pockets = ndi.label(background, structure=cross)
    if n_pockets == 0:
        return labels.copy()
    # Background touching the image border is outside every object.
    open_air = np.zeros(n_pockets + 1, dtype=bool)
    for axis in range(labels.ndim):
        open_air[np.unique(np.take(pockets, [0, -1], axis=axis))] = True
    # Which objects border each pocket: pairs (pocket, label) across one face-neighbour step.
    pairs = []
    for axis in range(labels.ndim):
        lo = [slice(None)] * labels.ndim
        hi = [slice(None)] * labels.ndim
        lo[axis], hi[axis] = slice(None, -1), slice(1, None)
        for a, b in ((tuple(lo), tuple(hi)), (tuple(hi), tuple(lo))):
            where = (pockets[a] > 0) & (labels[b] > 0)
            pairs.append(np.stack([pockets[a][where], labels[b][where]], axis=1))
    pairs_all = np.unique(np.concatenate(pairs), axis=0)
    n_neighbours = np.bincount(pairs_all[:, 0], minlength=n_pockets + 1)
    owner = np.zeros(n_pockets + 1, dtype=labels.dtype)
    owner[pairs_all[:, 0]] = pairs_all[:, 1]
    fill = (n_neighbours == 1) & ~open_air
    fill[0] = False
    lut = np.where(fill, owner, 0).astype(labels.dtype)
    return np.where(background, lut[pockets], labels)


@tool(category="segment")
def relabel_sequential(labels: Labels) -> Labels:
    """Renumber the objects of a label image 1..N without gaps, keeping their order.

    Parameters
    ----------
    labels : Labels
        Instance label image, 2D or 3D (e.g. read from a file, with gaps in its numbers).

    Returns
    -------
    Labels
        The same objects numbered 1..N, int32.

    Examples
    --------
    >>> import numpy as np
    >>> relabel_sequential(np.array([[0, 5], [9, 5]])).tolist()
    [[0, 1], [2, 1]]
    """
    check_labels(labels)
    return relabel_consecutive(labels)


# -- the segmenter that picks its method --------------------------------------------------------

# A region over this x a large object's area (the disc of 1.1 x the 75th-percentile radius,
# so about the 75th-percentile disc itself) may hold several objects. Chosen on the counting
# design set (evals/toolbench/counting.py): 1.3, 1.0, 0.8 gave movie frames exact 0.42, 0.58,
# 0.67 and textured nuclei -18 %, -18 %, -16 %; below 0.8 nothing changes (the seeds' depth and
# spacing then decide alone), and separated objects stay whole at every value.
CLUMP_AREA_RATIO = 0.8
# Clumps of objects of two brightnesses (``_clump_seeds``), chosen on the counting design set:
# intensities are read STEP_RIM px inside an edge (the image's blur and ours soften it); a dim
# object's seed lies STEP_WIDTH x STEP_RIM px from the background (narrower parts of one object
# are dimmed by the blur alone: lobes of the irregular shapes); the two levels differ by
# STEP_CONTRAST robust spreads (true steps measured 6.6-24, texture of one nucleus 4.6-6.6,
# with one spread pooled over each side; since 2026-12-04 each connected part is read around
# its own level, so a chain's two dim ends of different brightness no longer inflate it:
# design nuclei 13.2 -> 9.7 % count error, movie 4.5 -> 3.8 %, the other sets within 0.1
# point; 6 and 10 spreads then gave blobs 8.0 and 8.4 %, nuclei 9.7 and 13.6 %) and
# STEP_NOISE background noise SDs (blotches of one noisy blob pass the first test; 3 and 5
# split fewer textured nuclei, 5 no more blobs).
STEP_RIM = 2.0
STEP_WIDTH = 2.0
STEP_CONTRAST = 8.0
STEP_NOISE = 4.0
UNEVEN_BACKGROUND = 0.2  # background range over object contrast that needs background removal
# A learned object is kept when it is this many background SDs brighter than the ring around
# it: on noise alone the model finds "nuclei" (176 in a noisy image of 8 small blobs).
LEARNED_MIN_CONTRAST = 2.0
SegmentMethod = Literal[
    "auto", "threshold", "watershed", "voronoi_otsu", "background_removal", "stardist"
]


def _object_area(radius: float, ndim: int, pixel_size: PixelSize | None) -> float:
    """Area (2D) or volume (3D, in voxels) of a round object of ``radius`` X-pixels."""
    if ndim == 2:
        return math.pi * radius * radius
    ratio = 1.0
    if pixel_size is not None and pixel_size.calibrated and len(pixel_size.spacing) == 3:
        sp = check_spacing(pixel_size.spacing, 3)
        ratio = (sp[-1] / sp[0]) * (sp[-1] / sp[1])
    return 4 / 3 * math.pi * radius**3 * ratio


def estimate_background(data: np.ndarray, radius: float) -> np.ndarray:
    """A smooth background under objects of ``radius`` px: a grey opening, then a blur.

    The opening (erosion then dilation with a box about three radii wide) removes every bright
    structure narrower than the box, objects included, and keeps the slowly varying
    background; it runs on a block-averaged copy so that its cost does not grow with the
    object size, and the result is blurred and brought back to full size.
    """
    return _full_size(_coarse_background(data, radius), data.shape)


def _coarse_background(data: np.ndarray, radius: float) -> np.ndarray:
    """:func:`estimate_background` on its block-averaged grid (enough to judge its range)."""
    from tools.scale import _downsample

    factor = max(1, int(radius // 2))
    factors = tuple(min(factor, max(1, n // 16)) for n in data.shape)
    small = _downsample(data.astype(np.float32, copy=False), factors)
    size = [max(3, math.ceil(3 * radius / f) | 1) for f in factors]
    background = ndi.grey_opening(small, size=size, mode="nearest")
    return ndi.gaussian_filter(background, [s / 2 for s in size], mode="nearest")


def _full_size(background: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A coarse background brought back to ``shape`` by linear interpolation."""
    zoom = [n / m for n, m in zip(shape, background.shape, strict=True)]
    full = ndi.zoom(background, zoom, order=1, mode="nearest", grid_mode=True)
    out = np.empty(shape, dtype=np.float32)
    crop = tuple(slice(0, min(a, b)) for a, b in zip(full.shape, shape, strict=True))
    out[...] = np.pad(full[crop], [(0, n - c.stop) for n, c in zip(shape, crop, strict=True)],
                      mode="edge")
    return out


def _dim_objects(low: np.ndarray, mask: np.ndarray, min_size: int, *,
                 fill: bool) -> np.ndarray:
    """Labels ``1..k`` of the regions of ``low`` that hold no pixel of ``mask``, 0 elsewhere.

    Dim objects lie above the lower threshold only; a bright object is larger at the lower
    threshold than at Otsu's (its blurred rim), so only regions apart from ``mask`` are new.
    Regions smaller than ``min_size`` are noise specks and dropped.
    """
    if fill:
        low = ndi.binary_fill_holes(low)
    return _label_without_specks(low, min_size, apart_from=mask)[0]


def _peak_markers(peaks: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """One marker per group of touching peaks: the flat top of a distance map is one seed."""
    spots = np.zeros(shape, dtype=bool)
    spots[tuple(peaks.T)] = True
    markers, _ = ndi.label(spots, structure=ndi.generate_binary_structure(len(shape), len(shape)))
    return markers.astype(np.int32, copy=False)


def _distance_peaks(inside: np.ndarray, depth: np.ndarray, footprint: np.ndarray,
                    blur: tuple[float, ...], min_depth: float) -> np.ndarray:
    """Maxima ``(n, ndim)`` of the smoothed distance ``depth`` inside ``inside``, at least
    ``min_depth`` deep."""
    relief = smooth(depth.astype(np.float32, copy=False), blur)
    # Zero outside, in place when the blur made a copy (distances are >= 0, so the product
    # is np.where's zero).
    relief = np.multiply(relief, inside, out=relief if relief is not depth else None)
    # peak_local_max's test without its per-call overhead (this runs once per clump); a
    # plateau of touching maxima is one peak, as one marker later.
    top = relief == ndi.maximum_filter(relief, footprint=footprint, mode="nearest")
    top &= inside & (relief > min_depth)
    peaks = np.argwhere(top)
    if len(peaks) > 1:
        groups, _ = ndi.label(top, structure=np.ones((3,) * top.ndim, dtype=bool))
        _, first = np.unique(groups[tuple(peaks.T)], return_index=True)
        peaks = peaks[first]
    return peaks


def nearer_than(distance: float, sampling: tuple[float, ...]) -> np.ndarray:
    """Footprint of the offsets closer than ``distance`` with axis steps ``sampling``.

    Eroding a mask with it keeps the pixels whose ``distance_transform_edt`` (same sampling,
    array edges not background) is at least ``distance``.

    Examples
    --------
    >>> nearer_than(2.0, (1.0, 1.0)).astype(int)
    array([[1, 1, 1],
           [1, 1, 1],
           [1, 1, 1]])
    """
    # Strictly closer, unlike tools.filters.ellipsoid_footprint (its ball includes the rim,
    # which would drop the pixels exactly ``distance`` deep). The farthest offset on an axis
    # is the largest whole number of steps below ``distance``.
    axes = [np.arange(-(reach := math.ceil(distance / s) - 1), reach + 1) * s for s in sampling]
    squared = sum(a**2 for a in np.meshgrid(*axes, indexing="ij", sparse=True))
    return np.asarray(squared < distance**2)


def _erode(mask: np.ndarray, footprint: np.ndarray) -> np.ndarray:
    """Binary erosion of ``mask`` by ``footprint``, pixels beyond the array counted as set.

    A box footprint (the common one: :func:`nearer_than` of 2 px) runs as shifted ANDs along
    each axis, several times faster on the small boxes of one clump than
    ``ndi.minimum_filter``.
    """
    if not footprint.all():
        return ndi.minimum_filter(mask, footprint=footprint, mode="constant", cval=True)
    out = mask.copy()
    for axis, size in enumerate(footprint.shape):
        source = out.copy() if size > 1 else out
        for shift in range(1, size // 2 + 1):
            if shift >= mask.shape[axis]:
                break
            head = [slice(None)] * mask.ndim
            tail = [slice(None)] * mask.ndim
            head[axis], tail[axis] = slice(shift, None), slice(None, -shift)
            out[tuple(head)] &= source[tuple(tail)]
            out[tuple(tail)] &= source[tuple(head)]
    return out


def _robust_sd(values: np.ndarray) -> float:
    """1.4826 x the median absolute deviation: the SD of Gaussian values, blind to outliers."""
    return 1.4826 * float(np.median(np.abs(values - np.median(values))))


def _background_noise(blurred: np.ndarray, mask: np.ndarray) -> float:
    """Robust SD of the smoothed image outside ``mask``, on at most ~200k pixels."""
    step = max(1, blurred.size // 200_000)
    background = blurred.ravel()[::step][~mask.ravel()[::step]]
    if background.size < 10:
        return 0.0
    return _robust_sd(background)


def _group_order(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """The order that sorts ``values`` within each group, groups in ascending order.

    Equal values may come in either order: the order statistics taken from it are the same.
    """
    order = np.argsort(values)
    grouped = groups[order]
    if grouped.size and int(grouped.max()) < 2**16:  # a radix sort, several times faster
        grouped = grouped.astype(np.uint16)
    return order[np.argsort(grouped, kind="stable")]


def _sorted_groups(values: np.ndarray, groups: np.ndarray,
                   n_groups: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``values`` sorted within each group, groups one after another, with each group's count
    and first position ``(n_groups,)``."""
    counts = np.bincount(groups, minlength=n_groups)
    return values[_group_order(values, groups)], counts, np.cumsum(counts) - counts


def _group_medians(values: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """Median ``(n_groups,)`` of the ``values`` in each group ``0..n_groups-1``, computed as
    ``np.median`` does (the mean of the two middle values) from one sort for all groups; 0 for
    an empty group."""
    ordered, counts, starts = _sorted_groups(values, groups, n_groups)
    held = counts > 0
    medians = np.zeros(n_groups, dtype=values.dtype)
    medians[held] = 0.5 * (ordered[(starts + (counts - 1) // 2)[held]]
                           + ordered[(starts + counts // 2)[held]])
    return medians


def _group_otsu(values: np.ndarray, groups: np.ndarray, n_groups: int,
                wanted: np.ndarray) -> np.ndarray:
    """Otsu's threshold ``(n_groups,)`` of each group's values where ``wanted``, NaN elsewhere.

    Exact, over every split of a group's sorted values; groups of similar size share one
    padded array, so that each row's running sum is that group's own.
    """
    ordered, counts, starts = _sorted_groups(values, groups, n_groups)
    ordered = ordered.astype(np.float64)
    levels = np.full(n_groups, np.nan)
    members = np.flatnonzero(wanted & (counts >= 2))
    if members.size == 0:
        return levels
    size_class = np.log2(counts[members]).astype(int)
    for size in np.unique(size_class):
        rows_of = members[size_class == size]
        n = counts[rows_of][:, None]
        column = np.arange(int(n.max()))
        valid = column < n
        rows = np.zeros((rows_of.size, column.size))
        rows[valid] = ordered[(starts[rows_of][:, None] + column)[valid]]
        running = np.cumsum(rows, axis=1)
        del rows
        line = np.arange(rows_of.size)
        total = running[line, n[:, 0] - 1][:, None]
        below = running[:, :-1]
        k = column[None, 1:]
        # k (n - k) (below / k - (total - below) / (n - k))^2, in place: these arrays are the
        # size of every core pixel, and fresh memory costs page faults.
        weight = n - k
        with np.errstate(divide="ignore", invalid="ignore"):
            upper = total - below
            upper /= weight
            spread = below / k
            spread -= upper
            del upper
            np.square(spread, out=spread)
            weight *= k
            spread *= weight
        spread[~valid[:, 1:]] = -np.inf
        i = np.argmax(spread, axis=1)
        first = starts[rows_of] + i
        levels[rows_of] = 0.5 * (ordered[first] + ordered[first + 1])
    return levels


def _any_in(ids: np.ndarray, where: np.ndarray, n_groups: int) -> np.ndarray:
    """Per group ``0..n_groups-1``: does ``where`` hold a pixel of it?"""
    return np.bincount(ids[where], minlength=n_groups) > 0


def _first_deepest(parts: np.ndarray, depth: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    """Per chosen part (``chosen[part]``), its deepest pixel ``(n, ndim)``: the first in C order
    where several are equally deep, as ``np.argmax`` takes it."""
    at = np.flatnonzero(chosen[parts])
    part, value = parts.ravel()[at], depth.ravel()[at]
    top = np.zeros(chosen.size)
    np.maximum.at(top, part, value)
    at, part = at[value == top[part]], part[value == top[part]]
    _, first = np.unique(part, return_index=True)
    return np.stack(np.unravel_index(at[first], parts.shape), axis=-1)


def _part_depth(parts: np.ndarray, sampling: tuple[float, ...] | None) -> np.ndarray:
    """Distance (float32) from each pixel of ``parts`` to the nearest pixel of another value
    (0, the background, included); the array's edge is not background.

    Each nonzero value is measured as ``ndi.distance_transform_edt`` would measure it alone
    (the same float32 values), in one call and about twice as fast: the ``edt`` package's
    multi-label transform.
    """
    import edt

    return edt.edt(parts, anisotropy=sampling or (1.0,) * parts.ndim, black_border=False)


def _clump_seeds(
    ids: np.ndarray, values: np.ndarray | None, *, footprint: np.ndarray, rim: np.ndarray,
    sampling: tuple[float, ...] | None, blur: tuple[float, ...], min_depth: float,
    noise: float,
) -> np.ndarray:
    """Watershed seeds ``(n, ndim)`` of the clumps ``1..K`` that ``ids`` numbers, all at once.

    Each clump's seeds are the maxima of its smoothed distance map at least ``min_depth``
    deep. Two overlapping objects of different brightness form one round region whose
    distance map may hold a single maximum, but inside it the smoothed intensity ``values``
    has two flat levels: Otsu's threshold of the clump's core (its soft edge left out) parts
    them, and the dim part is an object of its own when it is deep enough for a seed, wide
    enough that its centre is not dimmed by the blur alone (thin parts of one object are),
    and the two levels differ by ``STEP_CONTRAST`` robust spreads, each connected part's
    values read around its own median (texture and shading of one object do not), and by
    ``STEP_NOISE`` x ``noise``, the background's SD (blotches of one noisy object do not).
    Such a clump keeps its seeds in the bright part and deep in the dim part, and a part that
    holds none gets its own; it takes those seeds when they are more than its plain ones.

    The clumps must lie apart by more than any filter here reaches (the distance maps are
    then each clump's own, and so are the blurs and maximum filters): every test below is
    read per clump, and a clump drops out at the first it fails.
    """
    n_groups = int(ids.max()) + 1
    inside = ids > 0
    depth = _part_depth(inside, sampling)
    plain = _distance_peaks(inside, depth, footprint, blur, min_depth)
    if values is None:
        return plain
    at = tuple(plain.T)
    core = depth >= STEP_RIM
    core_ids = ids[core]
    stepped = np.bincount(core_ids, minlength=n_groups) >= 10
    stepped[0] = False
    # Rounded to float32, as numpy rounds a Python float compared with the float32 values.
    level = _group_otsu(values[core], core_ids, n_groups, stepped).astype(np.float32)
    level[~stepped] = np.inf
    bright = inside & (values > level[ids])
    dim = inside & ~bright
    # A dim pixel lies no deeper in its part than in the clump.
    wide = depth >= STEP_WIDTH * STEP_RIM
    gate = max(min_depth, 1.0)
    stepped &= _any_in(ids, dim & wide & (depth >= gate), n_groups)
    # The levels are read STEP_RIM inside each part: an erosion is that test of the parts'
    # distance maps, at a third of their cost.
    high_core, low_core = _erode(bright, rim), _erode(dim, rim)
    stepped &= _any_in(ids, high_core, n_groups) & _any_in(ids, low_core, n_groups)
    high, low = values[high_core], values[low_core]
    high_ids, low_ids = ids[high_core], ids[low_core]
    # Each connected part is read around its own level: the two dim ends of a chain may differ,
    # and pooled, that difference would pass for texture. (The parts are those of the cores:
    # the soft rim around a clump, dim, joins the rest.)
    deviations = []
    for part_values, part_core in ((high, high_core), (low, low_core)):
        parts, n_parts = ndi.label(part_core)
        part = parts[part_core]
        deviations.append(np.abs(part_values
                                 - _group_medians(part_values, part, n_parts + 1)[part]))
    spread = _group_medians(np.concatenate(deviations), np.concatenate([high_ids, low_ids]),
                            n_groups).astype(np.float64)
    contrast = (_group_medians(high, high_ids, n_groups).astype(np.float64)
                - _group_medians(low, low_ids, n_groups).astype(np.float64))
    stepped &= ~(contrast < np.maximum(STEP_CONTRAST * spread,
                                       max(STEP_NOISE * noise, 1e-12)))
    if not stepped.any():
        return plain
    bright &= stepped[ids]
    dim &= stepped[ids]
    # Each bright pixel's distance within the bright part, each dim one's within the dim part.
    inner = _part_depth(bright.view(np.uint8) + 2 * dim.view(np.uint8), sampling)
    stepped &= _any_in(ids, wide & dim & (inner >= gate), n_groups)
    # The distance seeds in the bright part are kept, and those deep inside the dim part,
    # whose part then needs no other; a bright part without a seed gets its deepest point and
    # every other dim part its wide enough distance maxima.
    bright_parts, n_bright = ndi.label(bright)
    dim_parts, n_dim = ndi.label(dim)
    in_dim = dim[at] & (inner[at] >= min_depth)
    held_bright = np.zeros(n_bright + 1, dtype=bool)
    held_bright[bright_parts[at][bright[at]]] = True
    held_dim = np.zeros(n_dim + 1, dtype=bool)
    held_dim[dim_parts[at][in_dim]] = True
    owner_bright = np.zeros(n_bright + 1, dtype=ids.dtype)
    owner_bright[bright_parts[bright]] = ids[bright]
    owner_dim = np.zeros(n_dim + 1, dtype=ids.dtype)
    owner_dim[dim_parts[dim]] = ids[dim]
    # Parts that could add a seed: a bright one deep enough, a dim one with a wide pixel.
    new_bright = ~held_bright & _any_in(bright_parts, inner >= min_depth, n_bright + 1)
    new_dim = ~held_dim & _any_in(dim_parts, wide, n_dim + 1)
    new_bright[0] = new_dim[0] = False
    stepped &= (np.bincount(owner_bright[new_bright], minlength=n_groups)
                + np.bincount(owner_dim[new_dim], minlength=n_groups)) > 0
    if not stepped.any():
        return plain
    plain_ids = ids[at]
    kept = plain[stepped[plain_ids] & (bright[at] | in_dim)]
    deepest = _first_deepest(bright_parts, inner, new_bright & stepped[owner_bright])
    # The dim parts' maxima, box by box: few clumps get here, and a blur of the whole canvas
    # would cost more.
    found = [np.empty((0, ids.ndim), dtype=np.int64)]
    boxes = ndi.find_objects(ids)
    has_new_dim = np.bincount(owner_dim[new_dim], minlength=n_groups) > 0
    for k in np.flatnonzero(stepped & has_new_dim):
        box = tuple(slice(max(b.start - 1, 0), b.stop + 1) for b in boxes[k - 1])
        peaks = _distance_peaks(dim[box] & (ids[box] == k), np.where(dim[box], inner[box], 0),
                                footprint, blur, min_depth)
        found.append(peaks + [b.start for b in box])
    dim_peaks = np.concatenate(found)
    dim_peaks = dim_peaks[wide[tuple(dim_peaks.T)]]
    dim_peaks = dim_peaks[~held_dim[dim_parts[tuple(dim_peaks.T)]]]
    seeds = np.concatenate([kept, deepest, dim_peaks]).astype(plain.dtype, copy=False)
    seed_ids = ids[tuple(seeds.T)]
    use = stepped & (np.bincount(seed_ids, minlength=n_groups)
                     > np.bincount(plain_ids, minlength=n_groups))
    return np.concatenate([plain[~use[plain_ids]], seeds[use[seed_ids]]])


def _pack(shapes: np.ndarray, gap: int) -> tuple[tuple[int, ...], np.ndarray]:
    """Places boxes of ``shapes`` ``(n, ndim)`` on one canvas, ``gap`` px from each other and
    from the canvas's edge: in rows along the last axis, the rows stacked along the one
    before it, the tallest boxes first. Returns the canvas's shape and each box's first
    pixel ``(n, ndim)``."""
    heights, widths = shapes[:, -2], shapes[:, -1]
    row_width = max(int(widths.max()), math.isqrt(int(((heights + gap) * (widths + gap)).sum())))
    starts = np.full(shapes.shape, gap, dtype=np.int64)
    y = x = gap
    row_height = 0
    for i in np.argsort(-heights, kind="stable"):
        if x > gap and x + widths[i] > gap + row_width:
            y, x, row_height = y + row_height + gap, gap, 0
        starts[i, -2:] = y, x
        x += int(widths[i]) + gap
        row_height = max(row_height, int(heights[i]))
    extent = (starts + shapes).max(axis=0) + gap
    return tuple(int(n) for n in extent), starts


def _pack_flush(shapes: np.ndarray, cut: tuple[tuple[bool, bool], ...],
                gap: int) -> tuple[tuple[int, ...], np.ndarray] | None:
    """Places boxes cut by the image's edge on the same sides (``cut[axis]``: low, high) on
    one canvas, each flush with the canvas's edge where the image cut it, so that what lies
    beyond is the same; ``gap`` px apart in a row along an axis the image did not cut, and
    ``gap`` px from the canvas's other edges. None when every axis is cut (a corner).
    Returns the canvas's shape and each box's first pixel ``(n, ndim)``."""
    free = [axis for axis, sides in enumerate(cut) if not any(sides)]
    if not free:
        return None
    along = free[-1]
    starts = np.zeros(shapes.shape, dtype=np.int64)
    extent = []
    for axis, (low, high) in enumerate(cut):
        largest = int(shapes[:, axis].max())
        if axis == along:
            starts[:, axis] = gap + np.concatenate([[0], np.cumsum(shapes[:-1, axis] + gap)])
            extent.append(int(starts[-1, axis] + shapes[-1, axis]) + gap)
            continue
        size = largest + (0 if low else gap) + (0 if high else gap)
        starts[:, axis] = size - shapes[:, axis] if high and not low else (0 if low else gap)
        extent.append(size)
    return tuple(extent), starts


def _canvas_seeds(regions: np.ndarray, members: list[tuple[int, tuple[slice, ...]]],
                  shape: tuple[int, ...], starts: np.ndarray, intensity: np.ndarray | None,
                  settings: dict[str, Any]) -> np.ndarray:
    """:func:`_clump_seeds` of the regions ``(index, box)`` copied to a canvas of ``shape`` at
    ``starts``; the seeds ``(n, ndim)`` in the image's pixels."""
    ids = np.zeros(shape, dtype=np.int32)
    values = None if intensity is None else np.zeros(shape, dtype=intensity.dtype)
    for k, ((index, box), start) in enumerate(zip(members, starts, strict=True), start=1):
        place = tuple(slice(a, b.stop - b.start + a) for a, b in zip(start, box, strict=True))
        ids[place][regions[box] == index] = k
        if values is not None:
            values[place] = intensity[box]
    peaks = _clump_seeds(ids, values, **settings)
    k = ids[tuple(peaks.T)] - 1
    origin = np.asarray([[b.start for b in box] for _, box in members], dtype=np.int64)
    return peaks - starts[k] + origin[k]


def _canvas_gap(footprint: np.ndarray, rim: np.ndarray, blur: tuple[float, ...]) -> int:
    """Pixels between two boxes on a canvas of :func:`_clump_seeds`, so that no filter there
    reaches from one region into another.

    A box holds its region and a pixel of background around it, so two regions' pixels lie
    at least ``gap + 3`` apart along some axis; that must exceed the reach of the seeds'
    spacing (``footprint``), of the rim erosion and of the distance blur (scipy truncates a
    Gaussian at 4 sigma).
    """
    reach = max([*(n // 2 for n in footprint.shape), *(n // 2 for n in rim.shape),
                 *(int(4.0 * s + 0.5) for s in blur)])
    return max(1, reach - 2)


def _region_seeds(regions: np.ndarray, intensity: np.ndarray | None, *, gap: int,
                  **settings: Any) -> np.ndarray:
    """:func:`_clump_seeds` of every region ``1..N`` of ``regions``, in the image's pixels
    ``(n, ndim)``, as if each were read alone in its box (grown by a pixel, clipped by the
    image).

    The regions are read on shared canvases, each in its own box (a call per region costs
    more than its few hundred pixels' work), ``gap`` px apart: farther than any filter in
    :func:`_clump_seeds` reaches. A region cut by the image's edge shares a canvas with those
    cut on the same sides, flush with the canvas's edge there: beyond an image's edge is not
    background.
    """
    by_cut: dict[tuple[tuple[bool, bool], ...], list[tuple[int, tuple[slice, ...]]]] = {}
    for index, box in enumerate(ndi.find_objects(regions), start=1):
        if box is None:
            continue
        grown = [(b.start - 1, b.stop + 1) for b in box]
        cut = tuple((a < 0, b > n) for (a, b), n in zip(grown, regions.shape, strict=True))
        box = tuple(slice(max(a, 0), min(b, n)) for (a, b), n in zip(grown, regions.shape,
                                                                     strict=True))
        by_cut.setdefault(cut, []).append((index, box))
    seeds = [np.empty((0, regions.ndim), dtype=np.int64)]
    for cut, members in by_cut.items():
        sizes = np.asarray([[b.stop - b.start for b in box] for _, box in members],
                           dtype=np.int64)
        placed = _pack(sizes, gap) if not any(map(any, cut)) else _pack_flush(sizes, cut, gap)
        if placed is None:  # cut on every axis: each box alone
            for member, size in zip(members, sizes, strict=True):
                seeds.append(_canvas_seeds(regions, [member], tuple(int(n) for n in size),
                                           np.zeros((1, regions.ndim), dtype=np.int64),
                                           intensity, settings))
            continue
        seeds.append(_canvas_seeds(regions, members, *placed, intensity, settings))
    return np.concatenate(seeds)


def _split_by_distance(
    mask: np.ndarray, min_distance: int, pixel_size: PixelSize | None,
    seed_mask: np.ndarray | None = None, min_depth: float = 0.0,
    intensity: np.ndarray | None = None, noise: float = 0.0,
) -> np.ndarray:
    """Watershed of the distance to the background from its maxima: touching round shapes.

    Seeds are taken only inside ``seed_mask`` when given (region by region, so the distance
    map is computed only there), and only where the distance to the background is at least
    ``min_depth`` (a bump of a noisy outline is not an object); regions without seeds stay
    whole. With ``intensity``, a region of two brightness levels gets a seed in each
    (:func:`_clump_seeds`).
    """
    sampling = axis_sampling(mask.ndim, pixel_size)
    footprint = np.ones((2 * int(min_distance) + 1,) * mask.ndim, dtype=bool)
    blur = axis_sigmas(1.0, mask.ndim, pixel_size)
    rim = nearer_than(STEP_RIM, sampling or (1.0,) * mask.ndim)
    where = mask if seed_mask is None else seed_mask
    full = ndi.generate_binary_structure(mask.ndim, mask.ndim)
    regions, _ = ndi.label(where, structure=full)
    seeds = _region_seeds(regions, intensity, gap=_canvas_gap(footprint, rim, blur),
                          footprint=footprint, rim=rim, sampling=sampling, blur=blur,
                          min_depth=min_depth, noise=noise)
    spots = np.zeros(mask.shape, dtype=bool)
    spots[tuple(seeds.T)] = True
    markers, n_markers = ndi.label(spots, structure=full)
    if n_markers == 0:
        return ndi.label(mask)[0]
    return _flood_markers(markers.astype(np.int32, copy=False), mask)


def _contrast(labels: np.ndarray, work: np.ndarray, width: int) -> np.ndarray:
    """Per label ``1..N``: its mean minus the mean of the background ring ``width`` px wide.

    A label with no background pixel around it (only other labels) is judged against the
    image's median.
    """
    n = int(labels.max())
    inside = np.asarray(ndi.mean(work, labels, np.arange(1, n + 1)))
    ring = np.where(labels == 0, ndi.grey_dilation(labels, size=width), 0)
    ring_sum = np.bincount(ring.ravel(), work.ravel(), minlength=n + 1)[1:]
    ring_n = np.bincount(ring.ravel(), minlength=n + 1)[1:]
    outside = np.full(n, float(np.median(work)))
    np.divide(ring_sum, ring_n, out=outside, where=ring_n > 0)
    return inside - outside


def _learned_objects(
    work: np.ndarray, regions: np.ndarray, found: ObjectScale | None, noise: float, radius: float
) -> tuple[np.ndarray, int, int]:
    """Objects found by the bundled StarDist model, plus the threshold regions it left out.

    ``regions`` are the threshold's objects (bright and dim). A model object is kept when it
    is ``LEARNED_MIN_CONTRAST`` background SDs brighter than the ring around it; the SD is the
    larger of the pixel noise and the spread of the background outside ``regions`` once its
    slow variation is removed (after a denoiser the noise left is smooth, and the pixel
    estimate misses it: 10 blobs after the wavelet denoiser gave 544 objects with the pixel
    noise, 65 with the spread). A region that holds no kept model object is an object of its
    own (the model misses the smallest).
    Returns the labels, the number of model objects kept and of regions added.
    """
    from tools.stardist_segment import bundled_labels

    residual = work - estimate_background(work, radius)
    background = residual[regions == 0] if (regions == 0).any() else residual.ravel()
    spread = _robust_sd(background)
    floor = LEARNED_MIN_CONTRAST * max(noise, spread)
    width = 2 * max(2, round(0.5 * radius)) + 1
    learned = bundled_labels(work, found)
    if learned.max() > 0:
        keep = np.concatenate([[False], _contrast(learned, work, width) >= floor])
        learned = _keep_labels(learned, keep)
    n_learned = int(learned.max())
    covered = np.bincount(regions[learned > 0], minlength=int(regions.max()) + 1) > 0
    missed = _keep_labels(regions, ~covered)
    labels = np.where(missed > 0, missed + n_learned, learned)
    return labels.astype(np.int32, copy=False), n_learned, int(missed.max())


@tool(category="segment")
def segment_objects(
    image: Image,
    method: SegmentMethod = "auto",
    radius: Annotated[float, Gt(0)] | None = None,
    dark_objects: bool = False,
    pixel_size: PixelSize | None = None,
    nuclei: bool = False,
) -> Labels:
    """Segment and count objects with a method chosen to fit the image (the simplest call).

    Measures the objects' size (:func:`tools.scale.estimate_object_scale`) unless ``radius``
    is given, then picks: on an uneven background, the background is removed first (a grey
    opening wider than the objects); regions far larger than one object mean touching
    objects, which are split by a watershed of the distance to the background; otherwise a
    threshold and connected regions are enough. Smoothing and the smallest object kept follow
    the object size. The method used and why are recorded with the result.

    Parameters
    ----------
    image : Image
        Grey image, 2D or 3D: bright objects on a darker background unless ``dark_objects``.
    method : str
        "auto" picks as described; "threshold", "watershed" or "voronoi_otsu" force a
        segmenter; "background_removal" removes the background, then picks threshold or
        watershed; "stardist" (2D) lets the bundled StarDist model find and split the
        objects, for nuclei that touch or overlap: its objects fainter than their surroundings
        are dropped and the threshold's objects it missed are kept.
    radius : float, optional
        Typical object radius in pixels, if known; estimated from the image when left out.
    dark_objects : bool
        True for dark objects on a bright background.
    nuclei : bool
        True when the objects are nuclei: "auto" then uses "stardist" on a 2D image (a 3D one
        keeps the rules below).

    Returns
    -------
    Labels
        Instance labels (0 background, 1..N objects), int32, same shape as the image.

    Notes
    -----
    The rules, measured on generated images (``evals/toolbench/counting.py``, design seeds)
    and the scale sweep: a threshold alone is exact on separated objects at every size and
    merges touching ones; the distance watershed splits touching round objects but
    over-splits ragged ones, so it runs only in regions larger than about one large object
    (``CLUMP_AREA_RATIO``), from seeds at least half a small radius deep and apart, and is
    reported only when it split something; in such a region two flat brightness levels (two
    overlapping objects of different brightness, whose distance map often has one maximum)
    give each level its own seed (``_clump_seeds``; overlap pairs 29 -> 26 % count error,
    textured nuclei 17 -> 13 %); objects are segmented at Otsu's threshold, and
    regions above the triangle threshold that hold no Otsu object and are at least half a
    small object's area are kept as dim objects (Otsu's threshold alone left 34 % of dim blobs
    and 30 % of textured nuclei with a 4-8x brightness range uncounted; smaller ones are the
    blotches a denoiser leaves); the noise that thresholds and the size estimate must clear
    is measured over several pixels (:func:`tools.scale.correlated_noise_level`), so noise a
    denoiser made smooth is not taken for objects; a background whose range exceeds a fifth
    of the objects' contrast makes a global threshold cut objects in two or join them to the
    background.
    "auto" never picks "stardist": on the design set the learned model is the better splitter
    of nuclei (count error 0.9 % against 16 %) and movie frames, but it cuts lobed, irregular
    blobs that a threshold counts right (44 % too many, the distance watershed 28 %, a
    threshold 2 %), and neither its probabilities nor the shapes' solidity told nuclei from
    such blobs. What the objects are is the user's to say (``nuclei=True``).

    References
    ----------
    .. [1] N. Otsu, "A threshold selection method from gray-level histograms", IEEE Trans.
       Systems, Man, and Cybernetics 9(1):62-66, 1979. doi:10.1109/TSMC.1979.4310076
    .. [2] L. Vincent and P. Soille, "Watersheds in digital spaces: an efficient algorithm
       based on immersion simulations", IEEE Trans. PAMI 13(6):583-598, 1991.
    .. [3] S. R. Sternberg, "Biomedical image processing", Computer 16(1):22-34, 1983
       (rolling-ball background subtraction).

    Examples
    --------
    >>> from tools.synthetic import blobs
    >>> b = blobs(25, radius=(5.0, 8.0), seed=3)
    >>> int(segment_objects(b.image).max())
    25
    """
    data = check_image(image)
    methods = ("auto", "threshold", "watershed", "voronoi_otsu", "background_removal", "stardist")
    if method not in methods:
        raise InputError(f"method must be one of {', '.join(methods)}; got {method!r}")
    if not isinstance(nuclei, bool | np.bool_):
        raise InputError(f"nuclei must be True or False; got {nuclei!r}")
    if method == "stardist" and data.ndim != 2:
        raise InputError(f"method 'stardist' needs a 2D one-channel image (the bundled StarDist "
                         f"model is 2D), got shape {data.shape}; use 'watershed' for a 3D stack, "
                         "or pick one channel of a colour image")
    if radius is not None and (not np.isfinite(radius) or radius <= 0):
        raise InputError(f"radius must be > 0 pixels, got {radius}")
    _require_contrast(data)
    if dark_objects:
        data = float(data.max()) - data + float(data.min())
    if radius is not None:
        scale = {"radius": float(radius), "radius_low": float(radius),
                 "radius_high": float(radius), "sure": True, "reason": "given"}
        why_size = f"given radius {radius:g} px"
    else:
        found = radius_from_image(data, pixel_size)
        scale = dict(found) if found is not None else None
        why_size = describe(found)
        if scale is not None:
            record_choice("radius", round(scale["radius"], 2), why_size)
    if method == "voronoi_otsu":
        record_choice("method", "voronoi_otsu", "asked for")
        spot = 2.0 if scale is None else float(np.clip(SPOT_SIGMA_PER_RADIUS * scale["radius"],
                                                       1.0, 16.0))
        outline = 2.0 if scale is None else float(
            np.clip(OUTLINE_SIGMA_PER_RADIUS * scale["radius"], 1.0, 6.0))
        return voronoi_otsu_labeling(data, spot_sigma=spot, outline_sigma=outline,
                                     pixel_size=pixel_size)
    r = 3.0 if scale is None else scale["radius"]
    r_low = 3.0 if scale is None else scale["radius_low"]
    r_high = 3.0 if scale is None else scale["radius_high"]
    reasons = []
    work = data
    if method in ("auto", "background_removal"):
        # Its range is judged on the coarse grid; full size is built only to remove it.
        coarse = _coarse_background(data, r_high)
        low_bg, high_bg = np.percentile(coarse, [5, 95])
        top = float(np.percentile(data.ravel()[:: max(1, data.size // 500_000)], 99.5))
        unevenness = (high_bg - low_bg) / max(top - low_bg, 1e-12)
        if method == "background_removal" or unevenness > UNEVEN_BACKGROUND:
            work = data - _full_size(coarse, data.shape)
            reasons.append(
                f"background removed (it varies by {100 * unevenness:.0f} % of the objects' "
                "contrast)" if method == "auto" else "background removed (asked for)")
    sigma = 1.0 if scale is None else float(np.clip(SMOOTH_SIGMA_PER_RADIUS * r, 1.0, 2.0))
    sigmas = axis_sigmas(sigma, data.ndim, pixel_size)
    blurred = smooth(work, sigmas)
    min_size = max(1, int(MIN_AREA_FRACTION * _object_area(r_low, data.ndim, pixel_size)))
    otsu, triangle = foreground_thresholds(work, blurred, sigmas, ("otsu", "triangle"))
    # Objects are segmented at Otsu's threshold; the triangle threshold, when lower, finds the
    # dim objects Otsu's leaves out, and each of those is kept whole at that lower level.
    full = neighbours(data.ndim, pixel_size)
    regions, sizes = _label_without_specks(blurred > otsu, min_size, full)
    mask = regions > 0
    if work is not data:
        mask = ndi.binary_fill_holes(mask)
        regions = ndi.label(mask, structure=full)[0]
        sizes = np.bincount(regions.ravel())[1:]
    n_regions = int(regions.max())
    min_dim = int(DIM_MIN_AREA_FRACTION * _object_area(r_low, data.ndim, pixel_size))
    dim = _dim_objects(blurred > triangle, mask, max(min_size, min_dim),
                       fill=work is not data) if triangle < otsu else None
    large = _object_area(1.1 * r_high, data.ndim, pixel_size)
    is_clump = np.concatenate([[False], sizes > CLUMP_AREA_RATIO * large])
    labels, chosen = regions, "threshold"
    learn = method == "stardist" or (method == "auto" and bool(nuclei) and data.ndim == 2)
    if method == "auto" and nuclei and not learn:
        reasons.append("nuclei, but the bundled StarDist model is 2D")
    if learn:
        from tools.scale import correlated_noise_level
        from tools.stardist_segment import ModelUnavailableError

        every = regions if dim is None else np.where(dim > 0, dim + n_regions, regions)
        try:
            labels, n_learned, n_missed = _learned_objects(work, every, scale,
                                                           correlated_noise_level(data), r)
        except (ModelUnavailableError, ImportError) as exc:
            learn = False
            reasons.append(f"StarDist could not run ({exc}), so a distance watershed instead")
        else:
            dim, chosen = None, "stardist"
            why = "asked for" if method == "stardist" else "the objects are nuclei"
            reasons.append(f"StarDist, the bundled model ({why}), found {n_learned} "
                           f"objects; {n_missed} threshold region{'s' if n_missed != 1 else ''} "
                           "it left out kept")
    split = not learn and method != "threshold" and (
        method == "watershed" or bool(is_clump.any()))
    if split:
        min_distance = max(1, round(SEED_DISTANCE_PER_RADIUS * r_low))
        # Only the large regions are split: a single object's noisy outline can seed two.
        seed_mask = None if method == "watershed" else is_clump[regions]
        labels = _split_by_distance(mask, min_distance, pixel_size, seed_mask,
                                    min_depth=SEED_DEPTH_PER_RADIUS * r_low,
                                    intensity=blurred,
                                    noise=_background_noise(blurred, mask))
    # The method is named by what it did: a watershed that split nothing was a threshold.
    n_split = int(labels.max()) - n_regions
    if learn:
        pass  # its reason is recorded above
    elif method == "threshold":
        reasons.append("threshold (asked for)")
    elif method == "watershed":
        reasons.append("watershed (asked for)")
        chosen = "watershed"
    elif n_split > 0:
        reasons.append(f"touching objects: {n_split} more after splitting the regions larger "
                       "than one object by a distance watershed")
        chosen = "watershed"
    else:
        reasons.append("objects are apart: a threshold is enough")
    n_dim = 0 if dim is None else int(dim.max())
    if n_dim:
        labels = np.where(dim > 0, dim + int(labels.max()), labels)
        reasons.append(f"{n_dim} dim object{'s' if n_dim != 1 else ''} below Otsu's threshold "
                       f"kept (triangle threshold {triangle:.3g} < Otsu's {otsu:.3g})")
    if work is not data:
        chosen = f"background_removal+{chosen}"
    record_choice("method", chosen, "; ".join(reasons) + f" ({why_size})")
    record_choice("sigma", round(sigma, 2), why_size)
    record_choice("min_size", min_size, why_size)
    return relabel_consecutive(labels)
