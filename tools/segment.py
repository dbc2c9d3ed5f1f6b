"""Segmentation: turn an intensity image into an instance label image, and clean label images.

All tools take 2D (``YX``) or 3D (``ZYX``) arrays. Smoothing widths are given in pixels along
``X``; when the image's pixel size is known and anisotropic (a z step larger than the lateral
one), the width along each other axis is scaled by ``spacing_x / spacing_axis`` so that the blur
is isotropic in physical space. Without calibration every axis gets the same width in pixels.
"""

from __future__ import annotations

import functools
from typing import Annotated, Literal

import numpy as np
import pandas as pd
from annotated_types import Ge, Gt
from scipy import ndimage as ndi
from skimage import filters as skfilters
from skimage.feature import peak_local_max
from skimage.segmentation import watershed

from tools.checks import check_image, check_labels, check_spacing
from tools.errors import InputError
from tools.registry import tool
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


def _flood_markers(markers: np.ndarray, mask: np.ndarray) -> np.ndarray:
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
    labels = lut[regions]
    slices = ndi.find_objects(regions)
    for region in np.flatnonzero(per_region >= 2):
        box = slices[region - 1]
        inside = regions[box] == region
        seeds = np.where(inside, markers[box], 0)
        # Flooding in order of the distance to the nearest marker splits the region along the
        # Voronoi lines; a flat relief would leave ties to the order of scikit-image's heap.
        relief = ndi.distance_transform_edt(seeds == 0)
        flooded = watershed(relief, seeds, mask=inside)
        labels[box][inside] = flooded[inside]
    return labels


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
    gpu = _gpu_device_name()
    try:
        cle.select_device(gpu if gpu else None, dev_type="gpu" if gpu else None)
    except Exception as exc:
        raise InputError(f"no OpenCL device could be opened for clEsperanto: {exc}") from None
    return cle


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
    spot_sigma: Annotated[float, Ge(0)] = 2.0,
    outline_sigma: Annotated[float, Ge(0)] = 2.0,
    backend: Literal["auto", "skimage", "clesperanto"] = "auto",
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
    spot_sigma : float
        Blur before finding object centres, in pixels. Larger merges nearby objects; smaller
        splits large objects. About a third of the object radius works well.
    outline_sigma : float
        Blur before thresholding, in pixels. Larger gives smoother outlines.
    backend : str
        "auto" runs clEsperanto (OpenCL) when a GPU is present and scikit-image otherwise;
        "skimage" or "clesperanto" force one. On a CPU clEsperanto is much slower.

    Returns
    -------
    Labels
        Instance labels (0 background, 1..N objects), same shape as the image.
    """
    data = check_image(image)
    spot = axis_sigmas(check_sigma(spot_sigma, "spot_sigma"), data.ndim, pixel_size)
    outline = axis_sigmas(check_sigma(outline_sigma, "outline_sigma"), data.ndim, pixel_size)
    _require_contrast(data)
    if choose_backend(backend) == "clesperanto":
        return relabel_consecutive(_voronoi_otsu_clesperanto(data, spot, outline))
    outlined = smooth(data, outline)
    spotted = outlined if spot == outline else smooth(data, spot)
    foreground = outlined > threshold_value(outlined, "otsu")
    markers = _local_maxima(spotted, foreground)
    return relabel_consecutive(_flood_markers(markers, foreground))


@tool(category="segment")
def threshold_labeling(
    image: Image,
    method: Literal["otsu", "li", "triangle", "yen", "manual"] = "otsu",
    threshold: float | None = None,
    sigma: Annotated[float, Ge(0)] = 1.0,
    dark_objects: bool = False,
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
    sigma : float
        Gaussian blur before thresholding, in pixels; 0 for none.
    dark_objects : bool
        True when the objects are darker than the background (pixels below the threshold).

    Returns
    -------
    Labels
        Connected regions (8-connected in 2D, 26 in 3D) labelled 1..N.
    """
    data = check_image(image)
    sigmas = axis_sigmas(check_sigma(sigma, "sigma"), data.ndim, pixel_size)
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
    blurred = smooth(data, sigmas)
    if method != "manual":
        value = threshold_value(blurred, method)
    mask = blurred < value if dark_objects else blurred > value
    labels, _ = ndi.label(mask, structure=ndi.generate_binary_structure(data.ndim, data.ndim))
    return labels.astype(np.int32, copy=False)


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
    sigma: Annotated[float, Ge(0)] = 1.0,
    min_distance: Annotated[int, Ge(1)] = 5,
    spot_sigma: Annotated[float, Gt(0)] = 3.0,
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
    sigma : float
        Gaussian blur before thresholding, in pixels; 0 for none.
    min_distance : int
        Smallest distance between two seeds, in pixels. About the radius of the smallest
        object.
    spot_sigma : float
        Width of the spot detector in pixels when seeds are detected (about radius / 1.4).

    Returns
    -------
    Labels
        Instance labels 1..N; foreground regions without a seed keep a label of their own.
    """
    data = check_image(image)
    sigmas = axis_sigmas(check_sigma(sigma, "sigma"), data.ndim, pixel_size)
    if seeds not in ("distance", "spots"):
        raise InputError(f"seeds must be 'distance' or 'spots', got {seeds!r}")
    if spots is not None and seeds != "spots":
        raise InputError("a spots table was given: set seeds to 'spots' to use it")
    if min_distance < 1:
        raise InputError(f"min_distance must be >= 1 pixel, got {min_distance}")
    blurred = smooth(data, sigmas)
    mask = blurred > threshold_value(blurred, method)
    footprint = np.ones((2 * int(min_distance) + 1,) * data.ndim, dtype=bool)
    if seeds == "distance":
        spacing = (
            check_spacing(pixel_size.spacing, data.ndim)
            if pixel_size is not None and pixel_size.calibrated
            else None
        )
        relief = ndi.distance_transform_edt(mask, sampling=spacing).astype(np.float32)
        # A light blur removes the ridges of the distance map that would each seed an object.
        relief = smooth(relief, axis_sigmas(1.0, data.ndim, pixel_size))
        peaks = peak_local_max(
            relief, footprint=footprint, labels=mask.astype(np.int32), exclude_border=False
        )
        markers = np.zeros(data.shape, dtype=np.int32)
        markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1, dtype=np.int32)
        relief = -relief
    else:
        if spots is not None:
            markers = _spot_markers(spots, data.shape, mask)
        else:
            spot_sigmas = axis_sigmas(check_sigma(spot_sigma, "spot_sigma", allow_zero=False),
                                      data.ndim, pixel_size)
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
    """
    check_labels(labels)
    return relabel_consecutive(labels)
