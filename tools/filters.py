"""Filters and background removal: smoothing, edges, blob enhancement, flat-field correction.

Every filter works on 2D (``YX``) and 3D (``ZYX``) grayscale images. Sizes (``sigma``,
``radius``) are given in pixels along X. When the pixel size is known and the voxels are not
cubic (a confocal stack with 0.2 µm pixels and 1 µm steps), the size along every other axis is
scaled by ``pixel size along X / pixel size along that axis``, so the filter has the same
*physical* extent in every direction: ``sigma=4`` with spacing ``(1.0, 0.2, 0.2)`` µm blurs by
4 pixels (0.8 µm) in Y and X and by 0.8 pixel (0.8 µm) in Z. Without a pixel size the filter is
the same size, in pixels, along every axis.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated, Any, TypeVar

import numpy as np
from annotated_types import Ge, Gt
from scipy import ndimage as ndi

from tools.checks import check_image, check_spacing
from tools.errors import InputError
from tools.registry import tool
from tools.types import Image, PixelSize

F = TypeVar("F", bound=Callable[..., Any])

GAUSSIAN_TRUNCATE = 4.0
"""scipy's default kernel half-width in sigmas; skimage's gaussian uses the same."""


def declare_reach(reach: Callable[[Mapping[str, Any]], float]) -> Callable[[F], F]:
    """Declare how far a local filter reaches, so that it can be applied tile by tile.

    Parameters
    ----------
    reach : callable
        ``reach(arguments) -> pixels``: from the filter's validated arguments (defaults
        filled), the distance in pixels along X beyond which a pixel's output no longer
        depends on the input. :func:`tools.tiling.filter_tiled` reads each tile with a margin
        that wide; a filter that declares its reach can be tiled.

    Returns
    -------
    callable
        A decorator that stores ``reach`` on the function as ``tile_reach``.
    """

    def mark(func: F) -> F:
        func.tile_reach = reach  # type: ignore[attr-defined]
        return func

    return mark


def axis_scales(ndim: int, pixel_size: PixelSize | None) -> tuple[float, ...]:
    """Factor that turns a size in X pixels into pixels along each axis.

    Parameters
    ----------
    ndim : int
        Number of spatial axes of the image.
    pixel_size : PixelSize or None
        Physical size of a pixel per axis, in array order; None means cubic voxels.

    Returns
    -------
    tuple of float
        ``spacing[-1] / spacing[i]`` for every axis ``i`` (all 1.0 without a pixel size).
    """
    if pixel_size is None:
        return (1.0,) * ndim
    spacing = check_spacing(pixel_size.spacing, ndim)
    return tuple(spacing[-1] / s for s in spacing)


def per_axis(size: float, ndim: int, pixel_size: PixelSize | None) -> tuple[float, ...]:
    """A size given in X pixels, expressed in pixels along each axis (see module docstring)."""
    return tuple(size * s for s in axis_scales(ndim, pixel_size))


def check_positive(value: float, name: str, unit: str = "pixels") -> float:
    """Refuse a size that must be strictly positive (a sigma or a radius)."""
    if not np.isfinite(value) or value <= 0:
        raise InputError(f"{name} must be > 0 {unit}, got {value}")
    return float(value)


def ellipsoid_footprint(radii: tuple[float, ...]) -> np.ndarray:
    """A boolean ball (or ellipse) with the given radius in pixels along each axis.

    An axis whose radius is below one pixel gets a single plane, so a footprint for a stack
    with coarse Z steps stays inside one slice rather than reaching a slice that is far away
    physically.
    """
    half = [int(np.floor(r)) for r in radii]
    grids = np.ogrid[tuple(slice(-h, h + 1) for h in half)]
    distance = sum(
        (g / r) ** 2 if h > 0 else np.zeros_like(g, dtype=float)
        for g, r, h in zip(grids, radii, half, strict=True)
    )
    return np.asarray(distance <= 1.0)


@declare_reach(lambda a: GAUSSIAN_TRUNCATE * float(a["sigma"]) + 1)
@tool(category="filter")
def gaussian_blur(
    image: Image,
    sigma: Annotated[float, Gt(0)] = 1.0,
    pixel_size: PixelSize | None = None,
) -> Image:
    """Smooth an image with a Gaussian kernel to reduce noise before thresholding or detection.

    Parameters
    ----------
    image : ([P, ]M, N) ndarray
        2D or 3D grayscale image.
    sigma : float
        Standard deviation of the Gaussian, in pixels along X. In a 3D stack with a known voxel
        size, the Z sigma is scaled so that the blur has the same physical size in Z.

    Returns
    -------
    smoothed : ([P, ]M, N) ndarray of float32
        The smoothed image, float32, same shape.

    Examples
    --------
    >>> import numpy as np
    >>> from tools.filters import gaussian_blur
    >>> image = np.zeros((32, 32), dtype=np.float32)
    >>> image[16, 16] = 1.0
    >>> smoothed = gaussian_blur(image, sigma=2.0)
    >>> smoothed.shape, smoothed.dtype
    ((32, 32), dtype('float32'))
    >>> round(float(smoothed.sum()), 4)  # the total intensity is kept, spread out
    1.0
    """
    data = check_image(image)
    sigma = check_positive(sigma, "sigma")
    sigmas = per_axis(sigma, data.ndim, pixel_size)
    return ndi.gaussian_filter(data, sigma=sigmas, mode="nearest").astype(np.float32)


@declare_reach(lambda a: float(a["radius"]))
@tool(category="filter")
def median_filter(
    image: Image,
    radius: Annotated[int, Ge(1)] = 2,
    pixel_size: PixelSize | None = None,
) -> Image:
    """Remove salt-and-pepper noise and hot pixels with a median filter, keeping edges sharp.

    Parameters
    ----------
    image : ([P, ]M, N) ndarray
        2D or 3D grayscale image.
    radius : int
        Radius of the disk (2D) or ball (3D) the median is taken over, in pixels along X.
        In a 3D stack with a known voxel size the ball is flattened along Z to the same
        physical radius.

    Returns
    -------
    filtered : ([P, ]M, N) ndarray of float32
        The filtered image, float32, same shape.

    Examples
    --------
    >>> import numpy as np
    >>> from tools.filters import median_filter
    >>> image = np.full((9, 9), 10.0, dtype=np.float32)
    >>> image[4, 4] = 1000.0  # a hot pixel
    >>> float(median_filter(image, radius=1).max())
    10.0
    """
    data = check_image(image)
    radius = check_positive(radius, "radius")
    footprint = ellipsoid_footprint(per_axis(radius, data.ndim, pixel_size))
    return ndi.median_filter(data, footprint=footprint, mode="nearest").astype(np.float32)


@declare_reach(lambda a: GAUSSIAN_TRUNCATE * float(a["sigma"]) + 1)
@tool(category="filter")
def laplace_filter(
    image: Image,
    sigma: Annotated[float, Gt(0)] = 1.0,
    pixel_size: PixelSize | None = None,
) -> Image:
    """Enhance blobs and edges with the Laplacian of a Gaussian-smoothed image (LoG).

    The Laplacian is strongly negative at the centre of bright objects about
    ``sigma * sqrt(2)`` pixels in radius (2D) and near zero in flat regions. It is multiplied
    here by ``-sigma**2``, so bright blobs give positive peaks whose height does not depend on
    sigma.

    Parameters
    ----------
    image : ([P, ]M, N) ndarray
        2D or 3D grayscale image.
    sigma : float
        Smoothing before the Laplacian, in pixels along X; about the object radius divided
        by sqrt(2) in 2D (sqrt(3) in 3D). Small values (0.5) approach the plain discrete
        Laplacian and enhance noise.

    Returns
    -------
    response : ([P, ]M, N) ndarray of float32
        Scale-normalised negative LoG response (bright blobs positive), float32, same shape.

    References
    ----------
    .. [1] D. Marr and E. Hildreth, "Theory of edge detection," Proc. R. Soc. Lond. B 207,
           187-217 (1980).
    .. [2] T. Lindeberg, "Feature detection with automatic scale selection," Int. J. Comput.
           Vis. 30, 79-116 (1998).

    Examples
    --------
    >>> import numpy as np
    >>> from skimage.draw import disk
    >>> from tools.filters import laplace_filter
    >>> image = np.zeros((40, 40), dtype=np.float32)
    >>> image[disk((20, 20), 4)] = 1.0  # a blob of radius 4
    >>> response = laplace_filter(image, sigma=4 / np.sqrt(2))
    >>> tuple(int(i) for i in np.unravel_index(response.argmax(), response.shape))
    (20, 20)
    """
    data = check_image(image)
    sigma = check_positive(sigma, "sigma")
    sigmas = per_axis(sigma, data.ndim, pixel_size)
    response = ndi.gaussian_laplace(data, sigma=sigmas, mode="nearest")
    return (-(sigma**2) * response).astype(np.float32)


@declare_reach(lambda a: 1.0)
@tool(category="filter")
def sobel_edges(image: Image) -> Image:
    """Find edges: the gradient magnitude of the image by the Sobel operator.

    Bright where intensity changes quickly (object outlines), dark inside uniform regions.
    Useful as the relief for a watershed or to check focus. Blur noisy images first.

    Parameters
    ----------
    image : ([P, ]M, N) ndarray
        2D or 3D grayscale image.

    Returns
    -------
    edges : ([P, ]M, N) ndarray of float32
        Gradient magnitude, float32, same shape.

    Examples
    --------
    >>> import numpy as np
    >>> from tools.filters import sobel_edges
    >>> image = np.zeros((8, 8), dtype=np.float32)
    >>> image[:, 4:] = 1.0  # a vertical step edge
    >>> edges = sobel_edges(image)
    >>> bool(edges[4, 3] > 0 and edges[4, 4] > 0), float(edges[4, 0]), float(edges[4, 7])
    (True, 0.0, 0.0)
    """
    from skimage.filters import sobel

    data = check_image(image)
    return np.asarray(sobel(data), dtype=np.float32)


@declare_reach(
    lambda a: GAUSSIAN_TRUNCATE * float(a.get("high_sigma") or 1.6 * float(a["low_sigma"]))
)
@tool(category="filter")
def difference_of_gaussians(
    image: Image,
    low_sigma: Annotated[float, Gt(0)] = 1.0,
    high_sigma: Annotated[float, Gt(0)] | None = None,
    pixel_size: PixelSize | None = None,
) -> Image:
    """Band-pass filter: subtract a strongly blurred image from a slightly blurred one.

    Removes slowly varying background (uneven illumination) and pixel noise together, keeping
    structures between the two scales, such as spots or nuclei.

    Parameters
    ----------
    image : ([P, ]M, N) ndarray
        2D or 3D grayscale image.
    low_sigma : float
        Blur that removes noise, in pixels along X; smaller than the objects.
    high_sigma : float, optional
        Blur that estimates the background, in pixels along X; larger than the objects.
        1.6 times ``low_sigma`` when left out (a blob detector); give several object radii
        to remove an uneven background.

    Returns
    -------
    filtered : ([P, ]M, N) ndarray of float32
        The band-passed image, float32, same shape; background near zero.

    References
    ----------
    .. [1] D. Marr and E. Hildreth, "Theory of edge detection," Proc. R. Soc. Lond. B 207,
           187-217 (1980).

    Examples
    --------
    >>> import numpy as np
    >>> from skimage.draw import disk
    >>> from tools.filters import difference_of_gaussians
    >>> image = np.full((48, 48), 0.5, dtype=np.float32)  # a flat background ...
    >>> image[disk((24, 24), 3)] += 1.0                   # ... under one small spot
    >>> filtered = difference_of_gaussians(image, low_sigma=1.0, high_sigma=6.0)
    >>> abs(float(filtered[2, 2])) < 1e-3, bool(filtered[24, 24] > 0.3)
    (True, True)
    """
    data = check_image(image)
    low_sigma = check_positive(low_sigma, "low_sigma")
    high_sigma = 1.6 * low_sigma if high_sigma is None else check_positive(high_sigma, "high_sigma")
    if high_sigma <= low_sigma:
        raise InputError(
            f"high_sigma ({high_sigma}) must be larger than low_sigma ({low_sigma}); "
            "swap them or leave high_sigma out"
        )
    low = ndi.gaussian_filter(data, per_axis(low_sigma, data.ndim, pixel_size), mode="nearest")
    high = ndi.gaussian_filter(data, per_axis(high_sigma, data.ndim, pixel_size), mode="nearest")
    return (low - high).astype(np.float32)


@declare_reach(lambda a: 2 * float(a["radius"]))  # an opening: erosion then dilation
@tool(category="background")
def top_hat(
    image: Image,
    radius: Annotated[int, Ge(1)] = 15,
    pixel_size: PixelSize | None = None,
) -> Image:
    """Remove an uneven background with a white top-hat: the image minus its morphological opening.

    Keeps bright objects smaller than the structuring element and removes everything broader,
    such as illumination gradients and autofluorescence haze.

    Parameters
    ----------
    image : ([P, ]M, N) ndarray
        2D or 3D grayscale image, bright objects on a darker background.
    radius : int
        Radius of the disk (ball in 3D) in pixels along X; larger than the largest object
        to keep. In a stack with non-cubic voxels the ball becomes a cylinder of the same
        physical radius in-plane and the same physical half-height along Z.

    Returns
    -------
    foreground : ([P, ]M, N) ndarray of float32
        Background-subtracted image, float32, >= 0, same shape.

    References
    ----------
    .. [1] J. Serra, Image Analysis and Mathematical Morphology. Academic Press (1982).

    Examples
    --------
    >>> import numpy as np
    >>> from tools.filters import top_hat
    >>> ramp = np.tile(np.linspace(0, 1, 64, dtype=np.float32), (64, 1))  # uneven background
    >>> image = ramp.copy()
    >>> image[30:34, 30:34] += 2.0  # a small bright object
    >>> foreground = top_hat(image, radius=5)
    >>> round(float(foreground[31, 31]), 1), round(float(foreground[5, 5]), 1)
    (2.0, 0.0)
    """
    from skimage.morphology import ball, disk, white_tophat

    data = check_image(image)
    radius = check_positive(radius, "radius")
    radii = per_axis(radius, data.ndim, pixel_size)
    _check_fits(np.ones([2 * int(r) + 1 for r in radii]), data.shape, "radius")
    # Disks and balls decomposed into sequences of small footprints: the same result within a
    # pixel of the outline, 5-10x faster than the full footprint.
    footprint: object
    if len(set(radii)) == 1:
        footprint = (disk if data.ndim == 2 else ball)(int(radius), decomposition="sequence")
    elif data.ndim == 2:
        footprint = ellipsoid_footprint(radii)
    else:
        # Anisotropic voxels: a cylinder (in-plane disk, then a line along Z of the same
        # physical half-height) instead of a flattened ball, which cannot be decomposed.
        in_plane = (
            disk(int(radii[2]), decomposition="sequence")
            if radii[1] == radii[2]
            else [(ellipsoid_footprint(radii[1:]), 1)]
        )
        z_line = np.ones((2 * int(radii[0]) + 1, 1, 1), dtype=bool)
        footprint = [(fp[np.newaxis], n) for fp, n in in_plane] + [(z_line, 1)]
    padded, inner = pad_for_opening(data, tuple(2 * int(r) + 1 for r in radii))
    opened = padded - white_tophat(padded, footprint, mode="nearest")
    return (data - opened[inner]).astype(np.float32)


@tool(category="background")
def rolling_ball_background(
    image: Image,
    radius: Annotated[float, Gt(0)] = 50.0,
    pixel_size: PixelSize | None = None,
) -> Image:
    """Subtract the background estimated by rolling a ball under the intensity surface.

    The method of ImageJ's "Subtract Background": a ball of the given radius is rolled under
    the image seen as a landscape; where it cannot reach (objects narrower than the ball)
    is foreground. The ball's height is measured in 1/255 of the image's intensity range, as
    if the image were 8-bit, so the result does not depend on the intensity units (a float
    image in [0, 1] and the same image in 16-bit give the same background). A 3D stack is
    processed plane by plane, as ImageJ does, so the pixel size is not needed.

    Parameters
    ----------
    image : ([P, ]M, N) ndarray
        2D image or 3D stack (processed per Z plane), bright objects on a darker background.
    radius : float
        Ball radius in pixels; at least the radius of the largest object to keep.

    Returns
    -------
    foreground : ([P, ]M, N) ndarray of float32
        The image minus its background, float32, same shape.

    References
    ----------
    .. [1] S. R. Sternberg, "Biomedical image processing," Computer 16(1), 22-34 (1983).

    Examples
    --------
    >>> import numpy as np
    >>> from tools.filters import rolling_ball_background
    >>> yy, xx = np.mgrid[:64, :64]
    >>> hill = 100 * np.exp(-((yy - 32) ** 2 + (xx - 32) ** 2) / 2000)  # broad background
    >>> image = hill.astype(np.float32)
    >>> image[10:13, 10:13] += 50.0  # a small bright object on its slope
    >>> foreground = rolling_ball_background(image, radius=10)
    >>> round(float(foreground[11, 11])), round(float(foreground[40, 40]))
    (49, 0)
    """
    del pixel_size  # per-plane processing: only X/Y pixels matter
    data = check_image(image)
    radius = check_positive(radius, "radius")
    planes = data[np.newaxis] if data.ndim == 2 else data
    out = np.empty(planes.shape, dtype=np.float32)
    for z, plane in enumerate(planes):
        out[z] = plane - _rolling_ball_plane(plane, radius)
    return out[0] if data.ndim == 2 else out


def _rolling_ball_plane(plane: np.ndarray, radius: float) -> np.ndarray:
    """Background of one 2D plane; large balls roll on a shrunken image, as in ImageJ."""
    low, high = float(plane.min()), float(plane.max())
    if high == low:
        return plane.copy()  # a flat plane is all background
    scale = (high - low) / 255.0
    surface = (plane - low) / scale
    # ImageJ's shrink factors: the background is smooth at the ball's scale, so it is found on
    # a block-minimum image and interpolated back; radius 50 on 512x512 takes 0.1 s instead of
    # seconds, for an error of a fraction of a percent of the intensity range.
    shrink = 1 if radius <= 10 else 2 if radius <= 30 else 4 if radius <= 100 else 8
    shrink = min(shrink, max(1, min(plane.shape) // 8))
    if shrink == 1:
        return _ball_opening(surface, radius, radius) * scale + low
    h = -(-plane.shape[0] // shrink) * shrink
    w = -(-plane.shape[1] // shrink) * shrink
    padded = np.pad(surface, ((0, h - plane.shape[0]), (0, w - plane.shape[1])), mode="edge")
    small = padded.reshape(h // shrink, shrink, w // shrink, shrink).min(axis=(1, 3))
    # The same ball in original units: radius/shrink pixels wide here, 'radius' levels high.
    coarse = _ball_opening(small, radius / shrink, radius)
    upsampled = _upsample_linear(coarse, shrink, plane.shape)
    background = np.minimum(upsampled, surface)
    return background * scale + low


def _ball_opening(surface: np.ndarray, radius: float, height: float) -> np.ndarray:
    """Grey opening by a half-ellipsoid ``radius`` pixels wide and ``height`` high.

    The opening is the upper envelope of every position the ball reaches from below, so it
    follows tilted planes exactly (a ramp is all background), unlike the ball's apex alone.
    """
    half = max(1, int(radius))
    grid = np.mgrid[-half : half + 1, -half : half + 1]
    d2 = (grid**2).sum(axis=0) / max(radius, 1.0) ** 2
    footprint = d2 <= 1.0
    heights = np.where(footprint, height * np.sqrt(np.clip(1.0 - d2, 0.0, None)), 0.0)
    # Padding by odd reflection continues a gradient straight past the border; a constant
    # edge would be a ridge the ball cannot climb, leaving a false band along the bright side.
    padded, inner = pad_for_opening(surface, (half, half))
    opened = ndi.grey_opening(padded, footprint=footprint, structure=heights, mode="nearest")
    return opened[inner]


def pad_for_opening(
    data: np.ndarray, widths: tuple[int, ...]
) -> tuple[np.ndarray, tuple[slice, ...]]:
    """Pad an image so that a morphological opening is not fooled by the border.

    A constant or mirrored edge turns a gradient that rises towards the border into a ridge
    that the structuring element cannot climb, leaving a false band of foreground. Odd
    reflection continues the gradient straight past the border, but would turn objects near
    the border into deep dips; so the padding is never below the odd reflection of the
    image's object-free lower envelope (a minimum filter as wide as the padding).

    Returns
    -------
    padded : ndarray
        The padded image.
    inner : tuple of slice
        Where the original image lies in ``padded``.
    """
    widths = tuple(max(0, int(w)) for w in widths)
    envelope = ndi.minimum_filter(data, size=[2 * w + 1 for w in widths], mode="nearest")
    pad = [(w, w) for w in widths]
    padded = np.maximum(
        np.pad(data, pad, mode="reflect", reflect_type="odd"),
        np.pad(envelope, pad, mode="reflect", reflect_type="odd"),
    )
    inner = tuple(slice(w, w + n) for w, n in zip(widths, data.shape, strict=True))
    return padded, inner


def _upsample_linear(coarse: np.ndarray, factor: int, shape: tuple[int, ...]) -> np.ndarray:
    """Blow a block-reduced 2D image back up by linear interpolation from block centres.

    Values beyond the outermost centres are extrapolated linearly, so a gradient keeps rising
    into the last half block instead of levelling off.
    """
    out = coarse
    for axis, n in enumerate(shape):
        m = out.shape[axis]
        position = (np.arange(n) + 0.5) / factor - 0.5  # in coarse pixel units
        left = np.clip(np.floor(position).astype(int), 0, max(m - 2, 0))
        right = np.minimum(left + 1, m - 1)
        weight = position - left if m > 1 else np.zeros(n)
        shape_w = [1, 1]
        shape_w[axis] = n
        weight = weight.reshape(shape_w)
        out = np.take(out, left, axis=axis) * (1 - weight) + np.take(out, right, axis=axis) * weight
    return out


def _check_fits(footprint: np.ndarray, shape: tuple[int, ...], name: str) -> None:
    if all(f > s for f, s in zip(footprint.shape, shape, strict=True)):
        raise InputError(
            f"{name} gives a footprint of shape {footprint.shape}, larger than the image "
            f"{shape}; use a smaller {name}"
        )
