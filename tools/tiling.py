"""Tiled processing: filters and segmentation of images too large to process in one piece.

Two methods, one for each kind of operation:

**Local filters** (Gaussian, median, LoG, non-local means ...) are applied block by block with
:func:`dask.array.map_overlap`. Each block is read with a margin (``depth``) at least as wide
as the filter's reach, derived from its sigma or radius; the margin is cut off again after
filtering. The margin is taken from the neighbouring blocks only (``boundary="none"``), so at
the image border the filter applies its own edge mode exactly as on the whole image, and the
tiled result equals the untiled one up to floating-point rounding.

**Segmentation** is stitched with the *centre-in-core* rule. The image is cut into a grid of
non-overlapping core tiles; each tile is segmented together with a margin of ``overlap``
pixels on every side; of the objects found, a tile keeps exactly those whose centroid lies in
its own core, with their full extent (which may reach into the margin). An object is thus
segmented whole, with context around it, by the one tile that owns its centre, and never cut
or counted twice, provided the margin is wider than the largest object. Where two kept objects
claim the same pixel (their tiles disagreed about a boundary), the first tile written keeps it.
Global statistics the method needs (the Otsu threshold of voronoi-Otsu labelling) are computed
once over the whole image with dask before the tiles are segmented, so every tile uses the
same threshold as the untiled method.

StarDist has its own block-wise prediction (``predict_instances_big``), which uses the same
idea; :func:`segment_tiled` with ``method="stardist"`` calls it through
:mod:`tools.stardist_segment`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, Literal

import numpy as np
from annotated_types import Ge

from tools import denoise, filters
from tools.checks import check_image, check_spacing
from tools.errors import InputError
from tools.filters import GAUSSIAN_TRUNCATE
from tools.registry import REGISTRY, tool
from tools.types import Image, Labels, PixelSize

DEFAULT_TILE = 1024
"""Tile side in pixels: 1024x1024 float32 blocks keep a tile's working set near 50 MB."""

TILEABLE_FILTERS = tuple(
    f.__bia_tool__.name
    for module in (filters, denoise)
    for f in vars(module).values()
    if hasattr(f, "__bia_tool__") and callable(getattr(f, "tile_reach", None))
)
"""Registered filters that declare their reach (:func:`tools.filters.declare_reach`): their
output at a pixel depends only on a bounded neighbourhood."""

TileableFilter = Literal[TILEABLE_FILTERS]  # type: ignore[valid-type]


# -- grids ----------------------------------------------------------------------------------


def _tile_shape(tile_size: int | Sequence[int], ndim: int) -> tuple[int, ...]:
    sizes = (tile_size,) * ndim if isinstance(tile_size, int | np.integer) else tuple(tile_size)
    if len(sizes) != ndim or any(int(s) < 1 for s in sizes):
        raise InputError(
            f"tile_size must be a positive size per axis ({ndim} axes), got {tile_size}"
        )
    return tuple(int(s) for s in sizes)


def tile_grid(
    shape: Sequence[int], tile_size: int | Sequence[int]
) -> list[tuple[slice, ...]]:
    """The core tiles that partition an array of ``shape``, in raster order.

    Parameters
    ----------
    shape : sequence of int
        Array shape.
    tile_size : int or sequence of int
        Tile side in pixels (one value for every axis, or one per axis). Edge tiles are smaller.

    Returns
    -------
    list of tuple of slice
        One tuple of slices per tile; together they cover every pixel exactly once.

    Examples
    --------
    >>> [(t[0].start, t[1].start) for t in tile_grid((5, 4), 3)]  # tile corners
    [(0, 0), (0, 3), (3, 0), (3, 3)]
    """
    sizes = _tile_shape(tile_size, len(shape))
    starts = [range(0, n, s) for n, s in zip(shape, sizes, strict=True)]
    return [
        tuple(slice(a, min(a + s, n)) for a, s, n in zip(corner, sizes, shape, strict=True))
        for corner in itertools.product(*starts)
    ]


def _expand(
    core: tuple[slice, ...], margin: Sequence[int], shape: Sequence[int]
) -> tuple[slice, ...]:
    return tuple(
        slice(max(c.start - m, 0), min(c.stop + m, n))
        for c, m, n in zip(core, margin, shape, strict=True)
    )


# -- filters ---------------------------------------------------------------------------------


def map_tiled(
    func: Callable[..., np.ndarray],
    image: Any,
    *,
    depth: int | Sequence[int],
    tile_size: int | Sequence[int] = DEFAULT_TILE,
    dtype: Any = np.float32,
    progress: bool = False,
    **kwargs: Any,
) -> np.ndarray:
    """Apply a local filter block by block with dask's ``map_overlap``.

    Parameters
    ----------
    func : callable
        ``func(block, **kwargs) -> array`` of the block's shape; any filter whose value at a
        pixel depends only on pixels within ``depth``.
    image : array-like
        A numpy, zarr or dask array (anything dask can wrap and slice).
    depth : int or sequence of int
        Margin read around each block, in pixels (per axis): the filter's reach.
    tile_size : int or sequence of int
        Block side in pixels.
    dtype : dtype
        Output dtype.
    progress : bool
        Show a progress bar.
    **kwargs
        Passed to ``func``.

    Returns
    -------
    np.ndarray
        The filtered image, equal to ``func(image)`` when ``depth`` covers the filter's reach:
        the margins come from the neighbouring blocks, and at the image border ``func`` sees
        the true border.

    References
    ----------
    .. [1] Dask Development Team, "Dask: library for dynamic task scheduling", 2016,
       https://dask.org (``dask.array.map_overlap``).

    Examples
    --------
    >>> import numpy as np
    >>> from scipy import ndimage as ndi
    >>> image = np.random.default_rng(0).random((300, 300)).astype(np.float32)
    >>> tiled = map_tiled(ndi.gaussian_filter, image, depth=9, tile_size=128, sigma=2.0)
    >>> bool(np.allclose(tiled, ndi.gaussian_filter(image, 2.0), atol=1e-5))
    True
    """
    import dask.array as da

    shape = tuple(image.shape)
    chunks = _tile_shape(tile_size, len(shape))
    margins = (depth,) * len(shape) if isinstance(depth, int | np.integer) else tuple(depth)
    if len(margins) != len(shape) or any(int(m) < 0 for m in margins):
        raise InputError(f"depth must be >= 0 per axis ({len(shape)} axes), got {depth}")
    # dask needs every chunk at least as large as the margin it lends to its neighbour.
    chunks = tuple(max(c, int(m)) for c, m in zip(chunks, margins, strict=True))
    data = image if isinstance(image, da.Array) else da.from_array(image, chunks=chunks)
    data = data.rechunk(chunks)
    result = data.map_overlap(
        func, depth=tuple(int(m) for m in margins), boundary="none", dtype=dtype,
        meta=np.empty((0,) * len(shape), dtype=dtype), **kwargs,
    )
    if progress:
        from dask.diagnostics import ProgressBar

        with ProgressBar(minimum=2):
            return np.asarray(result.compute(scheduler="threads"), dtype=dtype)
    return np.asarray(result.compute(scheduler="threads"), dtype=dtype)


def _axis_scales(ndim: int, pixel_size: PixelSize | None) -> tuple[float, ...]:
    # Filters scale their X-pixel size to the other axes by the spacing ratio (tools.filters).
    if pixel_size is None or len(pixel_size.spacing) != ndim:
        return (1.0,) * ndim
    spacing = check_spacing(pixel_size.spacing, ndim)
    return tuple(spacing[-1] / s for s in spacing)


def filter_depth(
    filter_name: str, arguments: Mapping[str, Any], ndim: int, pixel_size: PixelSize | None = None
) -> tuple[int, ...]:
    """How far (in pixels, per axis) a filter reaches, from its sigma or radius.

    Parameters
    ----------
    filter_name : str
        One of :data:`TILEABLE_FILTERS`.
    arguments : mapping
        The filter's validated arguments, defaults filled.
    ndim : int
        Number of image axes.
    pixel_size : PixelSize, optional
        Filters scale their size along Z by the pixel-size ratio; so does the margin.

    Returns
    -------
    tuple of int
        The margin per axis; one pixel more than the kernel's half-width.
    """
    if filter_name not in TILEABLE_FILTERS:
        raise InputError(
            f"{filter_name!r} cannot be tiled; tileable filters: {', '.join(TILEABLE_FILTERS)}"
        )
    reach = REGISTRY.get(filter_name).func.tile_reach(arguments)
    return tuple(math.ceil(reach * s) + 1 for s in _axis_scales(ndim, pixel_size))


def _noise_sigma_sample(data: np.ndarray, side: int = 1024) -> float:
    """The noise level of an image, estimated on its central block (at most side^ndim)."""
    from skimage.restoration import estimate_sigma

    centre = tuple(
        slice(max(n // 2 - side // 2, 0), max(n // 2 - side // 2, 0) + min(side, n))
        for n in data.shape
    )
    return float(estimate_sigma(np.asarray(data[centre], dtype=np.float32)))


@tool(category="filter", tiled=True)
def filter_tiled(
    image: Image,
    filter_name: TileableFilter,
    arguments: dict[str, float | int | bool] | None = None,
    tile_size: Annotated[int, Ge(64)] = DEFAULT_TILE,
    pixel_size: PixelSize | None = None,
) -> Image:
    """Apply a smoothing, edge or denoising filter to a very large image, tile by tile.

    For images above the pixel budget. Each tile is filtered with a margin as wide as the
    filter's reach (from its sigma or radius), taken from the neighbouring tiles, so the result
    equals filtering the whole image at once. For ``denoise_nlm`` the noise level is estimated
    once on the central 1024-pixel block, not per tile, unless given.

    Parameters
    ----------
    image : Image
        2D or 3D grayscale image, any size.
    filter_name : str
        The filter tool to apply: one of gaussian_blur, median_filter, laplace_filter,
        difference_of_gaussians, sobel_edges, top_hat, denoise_nlm.
    arguments : dict, optional
        That filter's own parameters, e.g. {"sigma": 2}; its defaults otherwise.
    tile_size : int
        Side of a tile in pixels. Smaller uses less memory.

    Returns
    -------
    Image
        The filtered image, float32, same shape.

    Examples
    --------
    >>> import numpy as np
    >>> import tools.filters  # registers gaussian_blur
    >>> image = np.random.default_rng(1).random((200, 200)).astype(np.float32)
    >>> filter_tiled(image, "gaussian_blur", {"sigma": 1.5}, tile_size=64).shape
    (200, 200)
    """
    data = check_image(image)
    if filter_name not in TILEABLE_FILTERS:
        raise InputError(
            f"{filter_name!r} cannot be tiled; tileable filters: {', '.join(TILEABLE_FILTERS)}"
        )
    target = REGISTRY.get(filter_name)
    given = dict(arguments or {})
    if filter_name == "denoise_nlm" and given.get("noise_sigma") is None:
        given["noise_sigma"] = _noise_sigma_sample(data)
        if given["noise_sigma"] == 0.0:
            return data.copy()  # noise-free: denoise_nlm returns its input
    values = target.validate({"image": "image", **given})
    values.pop("image")
    wants_pixel_size = any(p.kind == "pixel_size" for p in target.params)
    if wants_pixel_size:
        values["pixel_size"] = pixel_size
    depth = filter_depth(filter_name, values, data.ndim, pixel_size if wants_pixel_size else None)
    tile = _tile_shape(tile_size, data.ndim)
    if any(n <= d for n, d in zip(data.shape, depth, strict=True)) or all(
            n <= t for n, t in zip(data.shape, tile, strict=True)):
        # One tile, or an axis shorter than the filter's reach: the whole image at once is
        # the exact answer (and dask cannot lend a margin wider than the array).
        return np.asarray(target.func(data, **values), dtype=np.float32)
    return map_tiled(target.func, data, depth=depth, tile_size=tile_size, **values)


# -- segmentation -----------------------------------------------------------------------------


def _centroids(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ids present in ``labels`` and the centroid of each (rows = ids, columns = axes)."""
    flat = labels.ravel()
    counts = np.bincount(flat)
    ids = np.flatnonzero(counts)
    ids = ids[ids != 0]
    if ids.size == 0:
        return ids, np.empty((0, labels.ndim))
    centres = np.empty((ids.size, labels.ndim))
    for axis in range(labels.ndim):
        coordinate = np.broadcast_to(
            np.arange(labels.shape[axis]).reshape([-1 if a == axis else 1
                                                   for a in range(labels.ndim)]),
            labels.shape,
        ).ravel()
        sums = np.bincount(flat, weights=coordinate, minlength=counts.size)
        centres[:, axis] = sums[ids] / counts[ids]
    return ids, centres


def label_tiled(
    segment: Callable[[np.ndarray], np.ndarray],
    image: Any,
    *,
    tile_size: int | Sequence[int] = DEFAULT_TILE,
    overlap: int | Sequence[int] = 64,
    progress: bool = False,
) -> np.ndarray:
    """Segment an image tile by tile and stitch the labels by the centre-in-core rule.

    Parameters
    ----------
    segment : callable
        ``segment(block) -> labels`` of the block's shape (0 background).
    image : array-like
        numpy, zarr or dask array; tiles are read by slicing, one at a time.
    tile_size : int or sequence of int
        Side of the core tiles in pixels.
    overlap : int or sequence of int
        Margin segmented around each core tile, in pixels; must exceed the diameter of the
        largest object (plus the reach of any smoothing) for the result to match the untiled
        segmentation.
    progress : bool
        Show a progress bar over the tiles.

    Returns
    -------
    np.ndarray
        int32 labels 1..N, unique across the whole image.

    Notes
    -----
    See the module docstring for the method. An object whose centroid lies in a tile's core is
    kept by that tile alone, with its full extent; objects with their centroid in the margin
    belong to a neighbouring tile and are dropped here.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy import ndimage as ndi
    >>> image = np.zeros((100, 100))
    >>> image[45:55, 10:90] = 1  # one long object across four tiles
    >>> int(label_tiled(lambda b: ndi.label(b > 0.5)[0], image, tile_size=50, overlap=45).max())
    1
    """
    from tqdm import tqdm

    shape = tuple(image.shape)
    margins = (overlap,) * len(shape) if isinstance(overlap, int | np.integer) else tuple(overlap)
    if len(margins) != len(shape) or any(int(m) < 0 for m in margins):
        raise InputError(f"overlap must be >= 0 pixels per axis, got {overlap}")
    out = np.zeros(shape, dtype=np.int32)
    next_label = 1
    tiles = tile_grid(shape, tile_size)
    for core in tqdm(tiles, desc="tiles", disable=not progress or len(tiles) < 2, leave=False):
        window = _expand(core, [int(m) for m in margins], shape)
        block = np.asarray(image[window])
        labels = np.asarray(segment(block))
        if labels.shape != block.shape:
            raise InputError(
                f"segmentation returned shape {labels.shape} for a tile of {block.shape}"
            )
        ids, centres = _centroids(labels.astype(np.int64, copy=False))
        if ids.size == 0:
            continue
        lo = np.array([c.start - w.start for c, w in zip(core, window, strict=True)])
        hi = np.array([c.stop - w.start for c, w in zip(core, window, strict=True)])
        inside = np.all((np.floor(centres) >= lo) & (np.floor(centres) < hi), axis=1)
        kept = ids[inside]
        if kept.size == 0:
            continue
        lut = np.zeros(int(labels.max()) + 1, dtype=np.int32)
        lut[kept] = np.arange(next_label, next_label + kept.size, dtype=np.int32)
        next_label += kept.size
        new = lut[labels]
        region = out[window]
        free = (new > 0) & (region == 0)
        region[free] = new[free]
    return out


def _otsu_of_smoothed(data: np.ndarray, sigma: float, tile_size: int) -> float:
    """Otsu's threshold of the Gaussian-smoothed image, computed with dask over blocks.

    The histogram has the 256 bins ``skimage.filters.threshold_otsu`` uses, over the smoothed
    image's own range, so the threshold is the untiled method's.
    """
    import dask
    import dask.array as da
    from skimage.filters import gaussian, threshold_otsu

    def smooth(block: np.ndarray) -> np.ndarray:
        return gaussian(block, sigma=sigma, preserve_range=True)

    depth = int(GAUSSIAN_TRUNCATE * sigma + 0.5) + 1 if sigma else 0
    chunks = max(tile_size, depth)
    smoothed = da.from_array(data, chunks=chunks).map_overlap(
        smooth, depth=depth, boundary="none", dtype=data.dtype
    ) if sigma else da.from_array(data, chunks=chunks)
    low, high = dask.compute(smoothed.min(), smoothed.max(), scheduler="threads")
    if float(low) == float(high):
        raise InputError("image is constant: there is nothing to segment")
    counts, edges = da.histogram(smoothed, bins=256, range=(low, high))
    counts = np.asarray(counts.compute(scheduler="threads"))
    centres = (edges[:-1] + edges[1:]) / 2
    value = float(threshold_otsu(hist=(counts, centres)))
    # As tools.segment.foreground_threshold: at least five noise SDs above the background.
    from tools.scale import correlated_noise_level

    below = np.cumsum(counts * (centres <= value))
    if below[-1] > 0 and sigma:
        background = float(centres[np.searchsorted(below, below[-1] / 2)])
        centre = tuple(slice(max(n // 2 - 512, 0), max(n // 2 - 512, 0) + min(1024, n))
                       for n in data.shape)
        gain = (1.0 / math.sqrt(2 * math.sqrt(math.pi) * sigma)) ** data.ndim if sigma > 0.5 \
            else 1.0
        value = max(value, background + 5 * correlated_noise_level(np.asarray(data[centre]))
                    * gain)
    return value


def _voronoi_otsu_block(
    block: np.ndarray, *, threshold: float, spot_sigma: float, outline_sigma: float,
    min_size: int = 1,
) -> np.ndarray:
    """Voronoi-Otsu labelling of one block with a threshold fixed for the whole image.

    The steps of :func:`tools.segment.voronoi_otsu_labeling`; only the threshold comes from
    outside, so that every tile agrees on what is foreground.
    """
    from scipy import ndimage as ndi
    from skimage.feature import peak_local_max
    from skimage.filters import gaussian
    from skimage.segmentation import watershed

    data = block.astype(np.float32, copy=False)
    smooth = gaussian(data, sigma=outline_sigma, preserve_range=True) if outline_sigma else data
    foreground = smooth > threshold
    if min_size > 1:  # noise specks go, as in voronoi_otsu_labeling (they fit in a margin)
        regions, _ = ndi.label(foreground, structure=ndi.generate_binary_structure(
            foreground.ndim, foreground.ndim))
        foreground &= (np.bincount(regions.ravel()) >= min_size)[regions]
    if not foreground.any():
        return np.zeros(block.shape, dtype=np.int32)
    spots = gaussian(data, sigma=spot_sigma, preserve_range=True) if spot_sigma else data
    peaks = peak_local_max(
        spots, min_distance=1, labels=foreground.astype(np.uint8), exclude_border=False
    )
    markers = np.zeros(block.shape, dtype=np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1, dtype=np.int32)
    labels = watershed(np.zeros(block.shape, dtype=np.uint8), markers, mask=foreground)
    orphans, n_orphans = ndi.label(foreground & (labels == 0))
    if n_orphans:
        labels = np.where(orphans > 0, orphans + labels.max(), labels)
    return labels.astype(np.int32, copy=False)


def _stardist_big(
    data: np.ndarray, *, tile_size: int, overlap: int, model: str
) -> np.ndarray:
    """StarDist's own block-wise prediction, through bia's StarDist tool module."""
    from csbdeep.utils import normalize

    from tools import stardist_segment as sd

    if data.ndim != 2:
        raise InputError("tiled StarDist supports 2D images; use stardist_segment for 3D")
    net = sd.load_model(model)
    normalized = normalize(data, 1, 99.8, axis=None).astype(np.float32, copy=False)
    try:  # the network's receptive field (the context a block needs) and size divisor
        field = net._axes_tile_overlap("YX")
        divisor = net._axes_div_by("YX")
    except Exception:  # private StarDist API; fall back to safe values
        field, divisor = (overlap, overlap), (16, 16)
    block, min_overlap, context = [], [], []
    for size, reach, div in zip(data.shape, field, divisor, strict=True):
        # StarDist rounds sizes to multiples of the divisor and needs
        # min_overlap + 2 * context < block_size; a quarter each leaves a quarter as stride.
        b = min(tile_size, size)
        block.append(b)
        min_overlap.append(min(overlap, b // 4) // div * div)  # objects below this stay whole
        context.append(min(math.ceil(reach / div) * div, b // 4 // div * div))
    with sd.quiet_output():
        labels, _ = net.predict_instances_big(
            normalized, axes="YX", block_size=block, min_overlap=min_overlap, context=context,
            show_progress=False,
        )
    return np.asarray(labels, dtype=np.int32)


@tool(category="segment", tiled=True)
def segment_tiled(
    image: Image,
    method: Literal["voronoi_otsu", "stardist"] = "voronoi_otsu",
    tile_size: Annotated[int, Ge(64)] = DEFAULT_TILE,
    overlap: Annotated[int, Ge(0)] = 64,
    spot_sigma: Annotated[float, Ge(0)] | None = None,
    outline_sigma: Annotated[float, Ge(0)] | None = None,
) -> Labels:
    """Segment nuclei in a very large image tile by tile, with labels stitched across tiles.

    For images above the pixel budget. Each tile is segmented with a margin of ``overlap``
    pixels; an object belongs to the tile that holds its centre and is kept whole, so objects
    on tile borders are neither cut nor counted twice. With "voronoi_otsu" the Otsu threshold
    is computed once over the whole image, so the result matches voronoi_otsu_labeling;
    "stardist" uses StarDist's own block-wise prediction with the bundled model.

    Parameters
    ----------
    image : Image
        2D or 3D fluorescence image (StarDist: 2D), bright objects on a dark background.
    method : str
        "voronoi_otsu" (threshold and Voronoi split) or "stardist" (deep learning, 2D).
    tile_size : int
        Side of a tile in pixels. Smaller uses less memory.
    overlap : int
        Margin around each tile, in pixels; must be larger than the largest object's diameter.
    spot_sigma : float, optional
        voronoi_otsu only: blur before finding object centres, in pixels; when left out, 0.4 times
        the object radius estimated from the image (as voronoi_otsu_labeling).
    outline_sigma : float, optional
        voronoi_otsu only: blur before thresholding, in pixels; when left out, a quarter of
        the estimated radius (at least 1).

    Returns
    -------
    Labels
        Instance labels (0 background, 1..N objects), int32, same shape as the image.

    References
    ----------
    .. [1] N. Otsu, "A threshold selection method from gray-level histograms", IEEE Trans.
       Systems, Man, and Cybernetics 9(1):62-66, 1979. doi:10.1109/TSMC.1979.4310076
    .. [2] U. Schmidt, M. Weigert, C. Broaddus and G. Myers, "Cell detection with star-convex
       polygons", MICCAI 2018 (StarDist; ``predict_instances_big``).

    Examples
    --------
    >>> from tools.synthetic import blobs
    >>> b = blobs(30, shape=(256, 256), radius=(5.0, 7.0), seed=6)
    >>> int(segment_tiled(b.image, tile_size=128, overlap=32).max())
    30
    """
    data = check_image(image)
    if method not in ("voronoi_otsu", "stardist"):
        raise InputError(f"method must be 'voronoi_otsu' or 'stardist', got {method!r}")
    if method == "stardist":
        if data.ndim == 2 and all(n <= t for n, t in zip(data.shape, _tile_shape(
                tile_size, 2), strict=True)):
            import importlib

            try:
                sd = importlib.import_module("tools.stardist_segment")
            except ImportError:
                raise InputError(
                    "StarDist is not available in this installation; use "
                    "method='voronoi_otsu'") from None
            return sd.stardist_segment(data)  # one tile: the whole-image prediction is exact
        if float(data.min()) == float(data.max()):
            raise InputError("image is constant: there is nothing to segment")
        return _stardist_big(data, tile_size=tile_size, overlap=overlap, model="bundled")
    from tools.segment import (
        OUTLINE_SIGMA_PER_RADIUS,
        SPOT_SIGMA_PER_RADIUS,
        _Estimate,
        check_sigma,
        voronoi_otsu_labeling,
    )

    for name, value in (("spot_sigma", spot_sigma), ("outline_sigma", outline_sigma)):
        if value is not None:
            check_sigma(value, name)
    if float(data.min()) == float(data.max()):
        raise InputError("image is constant: there is nothing to segment")
    estimate = _Estimate(data, None)
    if spot_sigma is None:
        spot_sigma = estimate.sigma("spot_sigma", SPOT_SIGMA_PER_RADIUS, 2.0)
    if outline_sigma is None:
        outline_sigma = estimate.sigma("outline_sigma", OUTLINE_SIGMA_PER_RADIUS, 2.0, high=6.0)
    reach = int(GAUSSIAN_TRUNCATE * max(spot_sigma, outline_sigma) + 0.5)
    if min(data.shape) <= 2 * reach + 1 or data.size <= int(np.prod(
            _tile_shape(tile_size, data.ndim))):
        # Smaller than one tile, or than the blur's reach along some axis (a 1-pixel-high
        # strip, a 3-plane stack): tiles add nothing, the whole-image method is exact.
        return voronoi_otsu_labeling(data, spot_sigma=spot_sigma, outline_sigma=outline_sigma,
                                     backend="skimage")
    threshold = _otsu_of_smoothed(data, outline_sigma, tile_size)
    min_size = estimate.min_size(data.ndim, None)
    labels = label_tiled(
        lambda block: _voronoi_otsu_block(
            block, threshold=threshold, spot_sigma=spot_sigma, outline_sigma=outline_sigma,
            min_size=min_size,
        ),
        data,
        tile_size=tile_size,
        overlap=overlap + reach,
        progress=data.size > 4 * tile_size**2,
    )
    return labels
