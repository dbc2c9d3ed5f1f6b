"""Segmentation: turn an intensity image into an instance label image."""

from __future__ import annotations

from typing import Annotated

import numpy as np
from annotated_types import Ge
from scipy import ndimage as ndi
from skimage.feature import peak_local_max
from skimage.filters import gaussian, threshold_otsu
from skimage.segmentation import watershed

from tools.checks import check_image
from tools.errors import InputError
from tools.registry import tool
from tools.types import Image, Labels


@tool(category="segment")
def voronoi_otsu_labeling(
    image: Image,
    spot_sigma: Annotated[float, Ge(0)] = 2.0,
    outline_sigma: Annotated[float, Ge(0)] = 2.0,
) -> Labels:
    """Label touching round objects such as nuclei: Otsu threshold split by Voronoi regions.

    The image is blurred with ``outline_sigma`` and thresholded with Otsu's method to find the
    foreground; it is blurred with ``spot_sigma`` to find one local maximum per object; the
    foreground is then divided between the maxima, each pixel going to the nearest maximum
    inside its foreground region. The method of clEsperanto, implemented with scikit-image.

    Parameters
    ----------
    image : Image
        Fluorescence image, 2D or 3D, bright objects on a dark background.
    spot_sigma : float
        Blur before finding object centres, in pixels. Larger merges nearby objects; smaller
        splits large objects. About a third of the object radius works well.
    outline_sigma : float
        Blur before thresholding, in pixels. Larger gives smoother outlines.

    Returns
    -------
    Labels
        Instance labels (0 background, 1..N objects), same shape as the image.
    """
    data = check_image(image)
    smooth = gaussian(data, sigma=outline_sigma, preserve_range=True) if outline_sigma else data
    if float(smooth.min()) == float(smooth.max()):
        raise InputError("image is constant: there is nothing to segment")
    foreground = smooth > threshold_otsu(smooth)
    spots = gaussian(data, sigma=spot_sigma, preserve_range=True) if spot_sigma else data
    peaks = peak_local_max(
        spots, min_distance=1, labels=foreground.astype(np.uint8), exclude_border=False
    )
    markers = np.zeros(data.shape, dtype=np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1, dtype=np.int32)
    # A flat relief makes the flooding grow every marker at the same speed inside the mask: a
    # Voronoi split that follows the foreground's shape.
    labels = watershed(np.zeros(data.shape, dtype=np.uint8), markers, mask=foreground)
    # Foreground regions without a maximum (flat tops) keep a label of their own.
    orphans, n_orphans = ndi.label(foreground & (labels == 0))
    if n_orphans:
        labels = np.where(orphans > 0, orphans + labels.max(), labels)
    return _relabel_sequential(labels)


def _relabel_sequential(labels: np.ndarray) -> np.ndarray:
    values = np.unique(labels)
    values = values[values != 0]
    lut = np.zeros(int(labels.max()) + 1, dtype=np.int32)
    lut[values] = np.arange(1, len(values) + 1, dtype=np.int32)
    return lut[labels]
