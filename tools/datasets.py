"""Sample data by name: real images shipped inside installed packages, and synthetic data.

Everything here works offline. Real images come from files inside the ``stardist`` and
``scikit-image`` wheels; scikit-image samples that are downloaded on first use (``cells3d``,
``human_mitosis``, ``kidney`` ...) are deliberately absent. Synthetic datasets call the
generators of :mod:`tools.synthetic` with their defaults.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tools import synthetic
from tools.errors import InputError
from tools.types import ImageMeta

__all__ = [
    "Dataset",
    "cell",
    "coins",
    "list_datasets",
    "load_dataset",
    "real_nuclei_2d",
    "stardist_nuclei_3d",
]


@dataclass(frozen=True, eq=False)
class Dataset:
    """A sample image with whatever ground truth comes with it.

    Attributes
    ----------
    name : str
        Name under which :func:`load_dataset` finds it.
    image : np.ndarray
        The intensity image (or movie), in its original dtype.
    meta : ImageMeta
        Axes, pixel size when known (else unit ``"pixel"``) and source.
    labels : np.ndarray or None
        Instance labels (0 background, consecutive ``1..N``) when the dataset has them.
    reference : np.ndarray or None
        A noise-free version of ``image`` for denoising datasets.
    tables : Mapping of str to DataFrame
        Extra ground truth, e.g. ``"tracks"`` and ``"objects"`` for a time-lapse, ``"blobs"``
        (``y, x, radius, touches_border``) for a counting image.
    description : str
        One line saying what the data is.
    """

    name: str
    image: np.ndarray
    meta: ImageMeta
    labels: np.ndarray | None = None
    reference: np.ndarray | None = None
    tables: Mapping[str, pd.DataFrame] = field(default_factory=dict)
    description: str = ""


def _consecutive(labels: np.ndarray) -> np.ndarray:
    """Renumber labels to 1..N keeping their order (shipped masks skip numbers)."""
    ids, inverse = np.unique(labels, return_inverse=True)
    if ids[0] != 0:
        inverse = inverse + 1
    return inverse.reshape(labels.shape).astype(np.int32)


_DESCRIPTIONS = {
    "real_nuclei_2d": (
        "Real fluorescence nuclei (2018 Data Science Bowl, shipped with stardist), 512x512 "
        "uint16, with instance labels of 125 nuclei; pixel size unknown."
    ),
    "stardist_nuclei_3d": (
        "Small synthetic 3D nuclei stack shipped with stardist, 31x61x57 uint16 ZYX, with "
        "instance labels; voxel size unknown."
    ),
    "cell": (
        "Quantitative phase image of one cell floating in saline (scikit-image), 660x550 uint8, "
        "0.107 µm pixels; banded background, a thresholding test; no labels."
    ),
    "coins": (
        "Greek coins from Pompeii (scikit-image), 303x384 uint8 grey image; 24 coins on an "
        "uneven background, a classic segmentation test; no labels."
    ),
    "synthetic_nuclei_2d": (
        "Synthetic fluorescence nuclei, 256x256 float32, 40 textured nuclei with clumps, blur, "
        "uneven background and Poisson-Gaussian noise, with instance labels."
    ),
    "synthetic_nuclei_3d": (
        "Synthetic 3D nuclei, 32x128x128 float32 ZYX at 2.0/0.5/0.5 µm, 40 nuclei, with "
        "instance labels."
    ),
    "synthetic_blobs": (
        "30 round blobs to count, 256x256 float32, some cut by the border; table 'blobs' has "
        "centres, radii and which blobs touch the border."
    ),
    "synthetic_noisy_pair": (
        "Noisy nuclei image (Poisson-Gaussian, 20 photons at peak) with its clean reference, "
        "256x256 float32, for denoising."
    ),
    "synthetic_timelapse": (
        "Movie of moving, dividing nuclei, 20x128x128 float32 TYX, with a label movie and "
        "ground-truth tracks (tables 'tracks' and 'objects', Cell Tracking Challenge form)."
    ),
}


def real_nuclei_2d() -> Dataset:
    """Real 2D fluorescence nuclei with instance labels, from stardist's sample data.

    The image (``stardist.data.test_image_nuclei_2d``) comes from the 2018 Kaggle Data Science
    Bowl (Caicedo et al., Nature Methods 16, 2019).

    Returns
    -------
    Dataset
        ``image`` uint16 ``(512, 512)``; ``labels`` int32 with 125 nuclei renumbered
        ``1..125`` (the shipped mask numbers them up to 183 with gaps); meta unit ``"pixel"``.
    """
    from stardist.data import test_image_nuclei_2d

    image, mask = test_image_nuclei_2d(return_mask=True)
    meta = ImageMeta(axes="YX", source="stardist.data.test_image_nuclei_2d (DSB 2018)")
    return Dataset(
        "real_nuclei_2d",
        image,
        meta,
        labels=_consecutive(mask),
        description=_DESCRIPTIONS["real_nuclei_2d"],
    )


def stardist_nuclei_3d() -> Dataset:
    """Stardist's small 3D nuclei sample stack (itself synthetic) with instance labels.

    Returns
    -------
    Dataset
        ``image`` uint16 ``(31, 61, 57)`` ``ZYX``; ``labels`` int32 renumbered ``1..N``.
    """
    from stardist.data import test_image_nuclei_3d

    image, mask = test_image_nuclei_3d(return_mask=True)
    meta = ImageMeta(axes="ZYX", source="stardist.data.test_image_nuclei_3d")
    return Dataset(
        "stardist_nuclei_3d",
        image,
        meta,
        labels=_consecutive(mask),
        description=_DESCRIPTIONS["stardist_nuclei_3d"],
    )


def cell() -> Dataset:
    """scikit-image's ``cell``: a quantitative phase image of a cell, 0.107 µm pixels.

    Returns
    -------
    Dataset
        ``image`` uint8 ``(660, 550)``, no labels.
    """
    from skimage import data

    meta = ImageMeta(
        axes="YX", spacing={"Y": 0.107, "X": 0.107}, unit="µm", source="skimage.data.cell"
    )
    return Dataset("cell", data.cell(), meta, description=_DESCRIPTIONS["cell"])


def coins() -> Dataset:
    """scikit-image's ``coins``: Greek coins on an uneven background.

    Returns
    -------
    Dataset
        ``image`` uint8 ``(303, 384)``, no labels; ``meta.extra["count"]`` is 24.
    """
    from skimage import data

    meta = ImageMeta(axes="YX", source="skimage.data.coins", extra={"count": 24})
    return Dataset("coins", data.coins(), meta, description=_DESCRIPTIONS["coins"])


def _synthetic_nuclei_2d(seed: int) -> Dataset:
    r = synthetic.nuclei_2d(seed=seed)
    return Dataset(
        "synthetic_nuclei_2d",
        r.image,
        r.meta,
        labels=r.labels,
        description=_DESCRIPTIONS["synthetic_nuclei_2d"],
    )


def _synthetic_nuclei_3d(seed: int) -> Dataset:
    r = synthetic.nuclei_3d(seed=seed)
    return Dataset(
        "synthetic_nuclei_3d",
        r.image,
        r.meta,
        labels=r.labels,
        description=_DESCRIPTIONS["synthetic_nuclei_3d"],
    )


def _synthetic_blobs(seed: int) -> Dataset:
    r = synthetic.blobs(30, border=True, seed=seed)
    table = pd.DataFrame(
        {
            "label": np.arange(1, r.count + 1),
            "y": r.centers[:, 0],
            "x": r.centers[:, 1],
            "radius": r.radii,
            "touches_border": r.touches_border,
        }
    )
    return Dataset(
        "synthetic_blobs",
        r.image,
        r.meta,
        labels=r.labels,
        tables={"blobs": table},
        description=_DESCRIPTIONS["synthetic_blobs"],
    )


def _synthetic_noisy_pair(seed: int) -> Dataset:
    r = synthetic.noisy_clean_pair(seed=seed)
    return Dataset(
        "synthetic_noisy_pair",
        r.noisy,
        r.meta,
        labels=r.labels,
        reference=r.clean,
        description=_DESCRIPTIONS["synthetic_noisy_pair"],
    )


def _synthetic_timelapse(seed: int) -> Dataset:
    r = synthetic.timelapse(seed=seed)
    return Dataset(
        "synthetic_timelapse",
        r.movie,
        r.meta,
        labels=r.labels,
        tables={"tracks": r.tracks, "objects": r.objects},
        description=_DESCRIPTIONS["synthetic_timelapse"],
    )


_LOADERS: dict[str, Callable[[int], Dataset]] = {
    "real_nuclei_2d": lambda seed: real_nuclei_2d(),
    "stardist_nuclei_3d": lambda seed: stardist_nuclei_3d(),
    "cell": lambda seed: cell(),
    "coins": lambda seed: coins(),
    "synthetic_nuclei_2d": _synthetic_nuclei_2d,
    "synthetic_nuclei_3d": _synthetic_nuclei_3d,
    "synthetic_blobs": _synthetic_blobs,
    "synthetic_noisy_pair": _synthetic_noisy_pair,
    "synthetic_timelapse": _synthetic_timelapse,
}


def list_datasets() -> dict[str, str]:
    """Names of the sample datasets, each with a one-line description.

    Returns
    -------
    dict of str to str
        Name -> description, real datasets first.
    """
    return dict(_DESCRIPTIONS)


def load_dataset(name: str, *, seed: int = 0) -> Dataset:
    """Load a sample dataset by name (see :func:`list_datasets`), offline.

    Parameters
    ----------
    name : str
        Dataset name, e.g. ``"real_nuclei_2d"`` or ``"synthetic_nuclei_2d"``; case, spaces and
        hyphens are forgiven.
    seed : int
        Random seed for the synthetic datasets (same seed, same data); real datasets ignore it.

    Returns
    -------
    Dataset
        The image, its metadata and any ground truth (labels, reference, tables).

    Raises
    ------
    InputError
        If the name is unknown; the message lists the available names.
    """
    if not isinstance(name, str):
        raise InputError(f"dataset name must be a string, got {name!r}")
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    if key not in _LOADERS:
        raise InputError(f"unknown dataset {name!r}; available: {', '.join(_LOADERS)}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise InputError(f"seed must be a non-negative integer, got {seed!r}")
    return _LOADERS[key](int(seed))
