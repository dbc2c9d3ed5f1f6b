"""Generated input files for the worked examples: one seeded generator per file kind.

Every example of the cookbook names its input files and, for each, a *kind* (``"nuclei"``,
``"blobs_border"``, ``"movie"``...). A kind is a small, seeded function of
:mod:`tools.synthetic` that writes the file and returns what is known about it (the true object
count, the number of tracks). The cookbook test writes each example's files with these, runs the
plan on them, and checks the answer against the truth where there is one.

Images are small (at most 192 x 192 pixels, 16 x 64 x 64 voxels, 6 frames of 96 x 96) so that
all examples run in a few minutes on two cores.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import tifffile

from tools import io, synthetic
from tools.errors import InputError
from tools.types import ImageMeta


@dataclass(frozen=True)
class Generated:
    """The arrays (or table) of one file kind, before writing, with what is true about them.

    Attributes
    ----------
    data : np.ndarray or pd.DataFrame
        Image, label image or table.
    role : {"image", "labels", "table", "plain"}
        How to write it: OME-TIFF image, OME-TIFF labels, CSV, or a TIFF without metadata
        (axes and pixel size unknown, as from many acquisition programs).
    meta : ImageMeta or None
        Axes and calibration written into the file (``None`` for tables and plain TIFFs).
    truth : dict of str to float
        Known values: ``count`` (objects), ``inner`` (objects not cut by the border),
        ``tracks`` (tracks in a movie), ``frames``.
    tolerance : float
        Relative error an answer may have against ``truth``. It checks that a plan is wired
        right (the count of the border-free labels, not of all of them), not how accurate a
        segmenter is (the benchmarks measure that): 0.15 for separated blobs and spots, where
        every segmenter should be nearly exact; 0.3 for nuclei (texture, clumps), touching
        blobs and 3D stacks; 0.5 for tracks in a movie, where one over-split cell adds a track.
    """

    data: np.ndarray | pd.DataFrame
    role: str
    meta: ImageMeta | None = None
    truth: dict[str, float] = field(default_factory=dict)
    tolerance: float = 0.3


def _uncalibrated(axes: str) -> ImageMeta:
    return ImageMeta(axes=axes, source="synthetic")


def _blob_file(image: np.ndarray, truth: dict[str, float]) -> Generated:
    # Separated blobs: every segmenter should be nearly exact.
    return Generated(image, "image", _uncalibrated("YX"), truth, tolerance=0.15)


@functools.cache
def _nuclei() -> synthetic.SyntheticNuclei:
    # Few clumps and no out-of-focus blobs: the labelled nuclei are all there is to count.
    return synthetic.nuclei_2d(
        (128, 128), n_nuclei=14, touching=0.15, out_of_focus=0, mitotic=0.0, seed=11
    )


@functools.cache
def _large() -> synthetic.SyntheticNuclei:
    return synthetic.nuclei_2d(
        (192, 192), n_nuclei=30, touching=0.15, out_of_focus=0, mitotic=0.0, seed=12
    )


@functools.cache
def _blobs(variant: str) -> synthetic.SyntheticBlobs:
    if variant == "separated":
        return synthetic.blobs(20, shape=(128, 128), radius=(4.0, 7.0), seed=21)
    if variant == "border":
        return synthetic.blobs(20, shape=(128, 128), radius=(4.0, 7.0), border=True, seed=22)
    if variant == "touching":
        return synthetic.blobs(16, shape=(128, 128), radius=(6.0, 9.0), overlap=True, seed=23)
    if variant == "spots":
        return synthetic.blobs(30, shape=(128, 128), radius=(2.0, 2.5), seed=24)
    raise InputError(f"unknown blob variant {variant!r}")


@functools.cache
def _stack() -> synthetic.SyntheticNuclei:
    return synthetic.nuclei_3d((16, 64, 64), n_nuclei=8, touching=0.1, mitotic=0.0, seed=31)


@functools.cache
def _movie() -> synthetic.Timelapse:
    # No divisions, so the true number of tracks is the number of cells.
    return synthetic.timelapse(6, shape=(96, 96), n_cells=5, division_rate=0.0, seed=41)


@functools.cache
def _pair() -> synthetic.NoisyPair:
    return synthetic.noisy_clean_pair((128, 128), photons=8.0, seed=52)


def _count(labels: np.ndarray) -> dict[str, float]:
    return {"count": float(len(np.unique(labels[labels > 0])))}


def _nuclei_file(s: synthetic.SyntheticNuclei, role: str) -> Generated:
    """The image (``"image"``, ``"plain"`` without metadata) or the labels of ``s``."""
    data = s.labels if role == "labels" else s.image
    return Generated(data, role, None if role == "plain" else s.meta, _count(s.labels))


def nuclei() -> Generated:
    """2D nuclei (DAPI-like), 128 x 128, 0.5 µm pixels, about 14 nuclei."""
    return _nuclei_file(_nuclei(), "image")


def nuclei_labels() -> Generated:
    """The true instance labels of :func:`nuclei` (a hand-made annotation)."""
    return _nuclei_file(_nuclei(), "labels")


def nuclei_uncalibrated() -> Generated:
    """The image of :func:`nuclei` in a TIFF without axes or pixel size."""
    return _nuclei_file(_nuclei(), "plain")


def nuclei_large() -> Generated:
    """2D nuclei, 192 x 192, 0.5 µm pixels, about 30 nuclei (for tiled processing)."""
    s = _large()
    return Generated(s.image, "image", s.meta, _count(s.labels))


def blobs() -> Generated:
    """20 separated round blobs, 128 x 128, uncalibrated, none cut by the border."""
    s = _blobs("separated")
    return _blob_file(s.image, {"count": float(s.count)})


def blobs_border() -> Generated:
    """20 blobs of which some are cut by the image border (``inner``: those that are not)."""
    s = _blobs("border")
    truth = {"count": float(s.count), "inner": float((~s.touches_border).sum())}
    return _blob_file(s.image, truth)


def blobs_touching() -> Generated:
    """16 blobs, about a third overlapping a neighbour (touching objects to split)."""
    s = _blobs("touching")
    return Generated(s.image, "image", _uncalibrated("YX"), {"count": float(s.count)})


def spots() -> Generated:
    """30 small spots (radius 2-2.5 px), like puncta or FISH dots, 128 x 128."""
    s = _blobs("spots")
    return _blob_file(s.image, {"count": float(s.count)})


def uneven() -> Generated:
    """The 20 blobs of :func:`blobs` on a strong background ramp (uneven illumination)."""
    s = _blobs("separated")
    ramp = np.linspace(0.0, 0.6, s.image.shape[1], dtype=np.float32)[None, :]
    return _blob_file(s.image + ramp, {"count": float(s.count)})


def dark_blobs() -> Generated:
    """The 20 blobs of :func:`blobs` inverted: dark objects (pores, vacuoles) on bright."""
    s = _blobs("separated")
    return _blob_file(1.0 - s.image, {"count": float(s.count)})


def noisy() -> Generated:
    """Low-light nuclei image (8 photons at full brightness), 128 x 128."""
    p = _pair()
    return Generated(p.noisy, "image", p.meta, _count(p.labels))


def clean() -> Generated:
    """The noise-free image behind :func:`noisy`."""
    p = _pair()
    return Generated(p.clean, "image", p.meta, _count(p.labels))


def stack() -> Generated:
    """3D nuclei, 16 x 64 x 64 ``ZYX``, voxels 2 x 0.5 x 0.5 µm, about 8 nuclei."""
    return _nuclei_file(_stack(), "image")


def stack_labels() -> Generated:
    """The true 3D instance labels of :func:`stack`."""
    return _nuclei_file(_stack(), "labels")


def stack_uncalibrated() -> Generated:
    """The stack of :func:`stack` in a TIFF without axes or voxel size."""
    return _nuclei_file(_stack(), "plain")


_TRACK_TOLERANCE = 0.5


def _movie_truth(t: synthetic.Timelapse) -> dict[str, float]:
    return {"tracks": float(len(t.tracks)), "count": float(len(t.tracks)),
            "frames": float(t.movie.shape[0])}


def movie() -> Generated:
    """Time-lapse of 5 moving nuclei, 6 frames of 96 x 96 ``TYX``, 0.5 µm pixels."""
    t = _movie()
    return Generated(t.movie, "image", t.meta, _movie_truth(t), _TRACK_TOLERANCE)


def movie_labels() -> Generated:
    """The true label movie of :func:`movie` (each cell keeps its label over time)."""
    t = _movie()
    return Generated(t.labels, "labels", t.meta, _movie_truth(t), _TRACK_TOLERANCE)


def movie_uncalibrated() -> Generated:
    """The movie of :func:`movie` in a TIFF without metadata (a reader takes T for Z)."""
    t = _movie()
    return Generated(t.movie, "plain", None, _movie_truth(t), _TRACK_TOLERANCE)


def movie_tracks_truth() -> Generated:
    """The true tracks of :func:`movie` as a CSV (Cell Tracking Challenge columns)."""
    t = _movie()
    return Generated(t.tracks, "table", None, _movie_truth(t), _TRACK_TOLERANCE)


def _second_channel() -> np.ndarray:
    s = _nuclei()
    rng = np.random.default_rng(61)
    # A cytoplasmic-like marker: the nuclear signal spread out, plus its own noise.
    from scipy import ndimage as ndi

    spread = ndi.gaussian_filter(s.image, 3.0)
    return (spread + rng.normal(0.0, 0.03, spread.shape)).clip(0).astype(np.float32)


def channel_dapi() -> Generated:
    """Nuclear channel of a two-channel acquisition (same image as :func:`nuclei`)."""
    return nuclei()


def channel_gfp() -> Generated:
    """Second channel of the same field: a marker that overlaps the nuclei, spread out."""
    s = _nuclei()
    return Generated(_second_channel(), "image", s.meta, _count(s.labels))


def two_channel() -> Generated:
    """DAPI and GFP of one field in a ``CYX`` TIFF without metadata (read as ZYX unless told)."""
    s = _nuclei()
    both = np.stack([s.image, _second_channel()])
    return Generated(both, "plain", None, _count(s.labels))


def counts_table() -> Generated:
    """CSV of 20 images counted by hand (``manual``) and by a program (``automatic``)."""
    rng = np.random.default_rng(71)
    manual = rng.integers(20, 120, size=20)
    automatic = manual + rng.normal(2.0, 4.0, size=20).round().astype(int)
    table = pd.DataFrame(
        {"image": [f"img{i:02d}" for i in range(20)], "manual": manual, "automatic": automatic}
    )
    return Generated(table, "table", None, {"count": 20.0})


def counts_table_other() -> Generated:
    """A second CSV over the same 20 images: another rater's ``count`` per ``image``."""
    base = counts_table().data
    rng = np.random.default_rng(72)
    other = base["manual"] + rng.normal(0.0, 3.0, size=len(base)).round().astype(int)
    return Generated(pd.DataFrame({"image": base["image"], "count": other}), "table", None,
                     {"count": 20.0})


KINDS: dict[str, Callable[[], Generated]] = {
    "nuclei": nuclei,
    "nuclei_labels": nuclei_labels,
    "nuclei_uncalibrated": nuclei_uncalibrated,
    "nuclei_large": nuclei_large,
    "blobs": blobs,
    "blobs_border": blobs_border,
    "blobs_touching": blobs_touching,
    "spots": spots,
    "uneven": uneven,
    "dark_blobs": dark_blobs,
    "noisy": noisy,
    "clean": clean,
    "stack": stack,
    "stack_labels": stack_labels,
    "stack_uncalibrated": stack_uncalibrated,
    "movie": movie,
    "movie_labels": movie_labels,
    "movie_uncalibrated": movie_uncalibrated,
    "movie_tracks_truth": movie_tracks_truth,
    "channel_dapi": channel_dapi,
    "channel_gfp": channel_gfp,
    "two_channel": two_channel,
    "counts_table": counts_table,
    "counts_table_other": counts_table_other,
}
"""File kinds the examples may name, each a seeded generator (same data at every call)."""

KIND_ARTIFACTS: dict[str, str] = {
    kind: "table" if kind.startswith("counts_table") or kind == "movie_tracks_truth"
    else "labels" if kind.endswith("_labels") else "image"
    for kind in KINDS
}
"""What each kind is read as (image, labels or table), known without generating it."""


def generate(kind: str) -> Generated:
    """The data of one file kind.

    Parameters
    ----------
    kind : str
        A key of :data:`KINDS`.

    Returns
    -------
    Generated
        Data, how to write it, and the known truth.

    Examples
    --------
    >>> generate("blobs").truth["count"]
    20.0
    """
    if kind not in KINDS:
        raise InputError(f"unknown file kind {kind!r}; known: {', '.join(sorted(KINDS))}")
    return KINDS[kind]()


def write_file(folder: str | Path, name: str, kind: str) -> dict[str, float]:
    """Write the file ``name`` of kind ``kind`` into ``folder`` and return its truth.

    Parameters
    ----------
    folder : str or Path
        Existing folder.
    name : str
        File name, ending in ``.tif``/``.tiff`` (images) or ``.csv`` (tables).
    kind : str
        A key of :data:`KINDS`.

    Returns
    -------
    dict of str to float
        What is known about the file (``count``, ``inner``, ``tracks``...).

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     write_file(d, "cells.tif", "blobs")["count"]
    20.0
    """
    gen = generate(kind)
    path = Path(folder) / name
    suffix = path.suffix.lower()
    if gen.role == "table":
        if suffix != ".csv":
            raise InputError(f"{name!r}: a {kind} file must end in .csv")
        io.write_table(path, gen.data, overwrite=True)
    elif suffix not in (".tif", ".tiff"):
        raise InputError(f"{name!r}: a {kind} file must end in .tif or .tiff")
    elif gen.role == "plain":
        tifffile.imwrite(path, np.asarray(gen.data))
    elif gen.role == "labels":
        io.write_labels(path, gen.data, gen.meta, overwrite=True)
    else:
        io.write_image(path, gen.data, gen.meta, overwrite=True)
    return dict(gen.truth)
