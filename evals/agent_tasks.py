"""The agent tool-use dataset: requests in plain words, the tools they need, the outcome to reach.

Every request is about image files that :func:`write_images` generates (seeded synthetic data
with exact ground truth, plus stardist's real nuclei image with its mask). A request lists
the steps it needs, each a set of acceptable tools (by name, or any registered tool of a
category, so new or renamed tools still count), the key arguments (the right input file, a
number the user gave), and the measured outcome with its tolerance, computed from the ground
truth rather than from any tool's output.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from tools.types import ImageMeta

OutcomeKind = Literal["count", "mean_area", "mean_intensity", "n_tracks"]


@dataclass(frozen=True)
class Step:
    """One step a request needs.

    Attributes
    ----------
    tools : tuple of str
        Acceptable tool names, the preferred first (the scripted oracle runs that one).
    categories : tuple of str
        Any registered tool of these categories is acceptable too.
    args : dict
        Key arguments: ``{"input": stem}`` means some argument refers to that file (or to an
        artifact made from it); other entries are parameter values the user gave.
    oracle : dict
        Arguments the scripted oracle passes; ``"$file"`` is the request's file, ``"$prev"``
        the previous step's first output.
    """

    tools: tuple[str, ...]
    categories: tuple[str, ...] = ()
    args: Mapping[str, Any] = field(default_factory=dict)
    oracle: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """What the analysis must measure, and how close it must come.

    ``count``: objects in the last label image (or rows of the last table); ``mean_area``:
    mean of the last table's area column in ``unit``; ``mean_intensity``: mean of its
    ``mean_intensity`` column; ``n_tracks``: distinct tracks of the last tracking output.
    A result passes when ``|measured - value| <= max(abs_tol, rel_tol * value)``.
    """

    kind: OutcomeKind
    value: float
    abs_tol: float = 0.0
    rel_tol: float = 0.0
    unit: str = "px"

    def accepts(self, measured: float | None) -> bool:
        """Whether a measured value is close enough."""
        if measured is None or not np.isfinite(measured):
            return False
        return abs(measured - self.value) <= max(self.abs_tol, self.rel_tol * abs(self.value))


@dataclass(frozen=True)
class AgentRequest:
    """One benchmark request."""

    id: str
    request: str
    file: str
    steps: tuple[Step, ...]
    outcome: Outcome


@dataclass(frozen=True)
class Truth:
    """Ground truth of one generated image."""

    file: str
    count: int
    count_inner: int
    mean_area_px: float
    mean_area_phys: float
    unit: str
    mean_intensity: float
    n_tracks: int = 0


# -- the images -----------------------------------------------------------------------------


def _truth_of(file: str, image: np.ndarray, labels: np.ndarray, meta: ImageMeta) -> Truth:
    from skimage.segmentation import clear_border

    ids, areas = np.unique(labels[labels != 0], return_counts=True)
    spacing = meta.pixel_size().spacing
    pixel_area = float(np.prod(spacing))
    sums = np.bincount(labels.ravel(), weights=image.ravel().astype(float))[ids]
    inner = clear_border(labels) if labels.ndim == 2 else labels
    return Truth(
        file=file, count=len(ids), count_inner=int(np.unique(inner[inner != 0]).size),
        mean_area_px=float(areas.mean()), mean_area_phys=float(areas.mean() * pixel_area),
        unit=meta.unit, mean_intensity=float(np.mean(sums / areas)),
    )


def _hard_edged(labels: np.ndarray, seed: int, noise: float = 0.03) -> np.ndarray:
    """An image whose objects are exactly ``labels``: flat objects of brightness 0.5-1.0 on 0.1.

    The blob generator's soft, blurred edges put the true outline below any threshold, so
    areas and intensities measured from a segmentation are biased by 20-40 %. Measurement
    requests use these hard-edged images, whose truth a correct analysis can reach.
    """
    rng = np.random.default_rng(seed)
    brightness = np.concatenate([[0.1], rng.uniform(0.5, 1.0, int(labels.max()))])
    image = brightness[labels] + rng.normal(0.0, noise, labels.shape)
    return np.clip(image, 0.0, None).astype(np.float32)


def write_images(folder: str | os.PathLike[str]) -> dict[str, Truth]:
    """Write the benchmark's images into ``folder`` (if not there yet) and return their truth.

    Returns
    -------
    dict of str to Truth
        Ground truth by file name.
    """
    from tools import io, synthetic

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    truths: dict[str, Truth] = {}

    def put(name: str, image: np.ndarray, labels: np.ndarray, meta: ImageMeta) -> None:
        path = folder / name
        if not path.exists():
            io.write_image(path, image, meta)
        truths[name] = _truth_of(name, image, labels, meta)

    for n in (3, 8, 15, 25, 40):
        b = synthetic.blobs(n, shape=(256, 256), radius=(4.0, 7.0), noise=0.03, seed=100 + n)
        put(f"blobs_{n}.tif", _hard_edged(b.labels, 100 + n), b.labels,
            ImageMeta(axes="YX", source="synthetic"))
    for n in (10, 20):
        b = synthetic.blobs(n, shape=(256, 256), radius=(5.0, 8.0), noise=0.15, seed=200 + n)
        put(f"noisy_blobs_{n}.tif", b.image, b.labels, ImageMeta(axes="YX", source="synthetic"))
    for n in (12, 24):
        b = synthetic.blobs(n, shape=(256, 256), radius=(5.0, 8.0), border=True, noise=0.03,
                            seed=300 + n)
        put(f"border_blobs_{n}.tif", b.image, b.labels, ImageMeta(axes="YX", source="synthetic"))
    b = synthetic.blobs(20, shape=(256, 256), radius=(6.0, 9.0), noise=0.03, seed=400)
    calibrated = ImageMeta(axes="YX", spacing={"Y": 0.65, "X": 0.65}, unit="µm",
                           source="synthetic")
    put("cells_calibrated.tif", _hard_edged(b.labels, 400), b.labels, calibrated)
    b = synthetic.blobs(30, shape=(256, 256), radius=(2.0, 2.5), noise=0.03, seed=500)
    put("spots.tif", b.image, b.labels, ImageMeta(axes="YX", source="synthetic"))
    nuc = synthetic.nuclei_2d(seed=7)
    put("nuclei_synthetic.tif", nuc.image, nuc.labels, nuc.meta)
    from stardist.data import test_image_nuclei_2d

    image, mask = test_image_nuclei_2d(return_mask=True)
    put("nuclei_real.tif", image, mask.astype(np.int32),
        ImageMeta(axes="YX", source="stardist.data.test_image_nuclei_2d"))
    movie = synthetic.timelapse(seed=3)
    path = folder / "movie.tif"
    if not path.exists():
        io.write_image(path, movie.movie, movie.meta)
    n_tracks = len(movie.tracks)
    first = _truth_of("movie.tif", movie.movie[0], movie.labels[0],
                      ImageMeta(axes="YX", source="synthetic"))
    truths["movie.tif"] = Truth(**{**first.__dict__, "n_tracks": n_tracks})
    return truths


# -- the requests ---------------------------------------------------------------------------

SEGMENT = Step(("voronoi_otsu_labeling", "stardist_segment", "watershed", "label_objects",
                "connected_components"), categories=("segment",),
               args={"input": "$stem"}, oracle={"image": "$file"})
MEASURE = Step(("measure_objects", "regionprops_table"), categories=("measure",),
               args={"input": "$stem"}, oracle={"labels": "$prev", "image": "$file"})
MEASURE_LABELS = Step(MEASURE.tools, MEASURE.categories, args={"input": "$stem"},
                      oracle={"labels": "$prev"})
DENOISE = Step(("denoise_nlm", "median_filter", "gaussian_blur", "denoise_tv"),
               categories=("denoise",), args={"input": "$stem"}, oracle={"image": "$file"})
SEGMENT_AFTER = Step(SEGMENT.tools, SEGMENT.categories, args={"input": "$stem"},
                     oracle={"image": "$prev"})
REMOVE_BORDER = Step(("remove_border_objects", "clear_border", "exclude_border_objects"),
                     args={"input": "$stem"}, oracle={"labels": "$prev"})
DETECT = Step(("detect_spots", "find_spots", "log_spots"), categories=("detect",),
              args={"input": "$stem"}, oracle={"image": "$file"})
# A movie must be segmented frame by frame (as one ZYX volume the tracks come out wrong: 38
# instead of 14 here). The registry runs any segmenter frame by frame on an input with a T
# axis, so every segment tool is acceptable; with spot_sigma 3, track_objects then gives
# exactly the 14 true tracks.
SEGMENT_FRAMES = Step(("voronoi_otsu_labeling", "segment_frames", "segment_movie"),
                      categories=("segment",), args={"input": "$stem"},
                      oracle={"image": "$file", "spot_sigma": 3.0})
TRACK = Step(("track_objects", "track_nuclei", "laptrack_track"), categories=("track",),
             args={"input": "$stem"}, oracle={"labels_movie": "$prev"})

_COUNT_PHRASES = (
    "How many blobs are there in {f}?",
    "Count the objects in {f}.",
    "Segment {f} and tell me how many nuclei there are.",
    "Please give me the number of bright spots in {f}.",
)


def _step(base: Step, stem: str, **overrides: Any) -> Step:
    args = {k: (stem if v == "$stem" else v) for k, v in base.args.items()}
    args.update(overrides.pop("args", {}))
    oracle = {**base.oracle, **overrides.pop("oracle", {})}
    return Step(overrides.pop("tools", base.tools), overrides.pop("categories", base.categories),
                args, oracle)


def build_requests(truths: Mapping[str, Truth]) -> list[AgentRequest]:
    """The benchmark's requests, with outcomes from ``truths`` (see :func:`write_images`)."""
    out: list[AgentRequest] = []

    def add(request: str, file: str, steps: list[Step], outcome: Outcome) -> None:
        out.append(AgentRequest(f"A{len(out):03d}", request, file, tuple(steps), outcome))

    # On the hard-edged images, little blur keeps outlines where they are (areas within 3 %,
    # the tool's default outline_sigma=2 inflates small objects by up to 30 %).
    sharp = {"outline_sigma": 1.0}
    blob_files = [f for f in truths if f.startswith("blobs_")]
    for f in blob_files:
        t, stem = truths[f], Path(f).stem
        for phrase in _COUNT_PHRASES:
            add(phrase.format(f=f), f, [_step(SEGMENT, stem)],
                Outcome("count", t.count, abs_tol=1))
        add(f"Segment the objects in {f} and measure their areas.", f,
            [_step(SEGMENT, stem, oracle=sharp), _step(MEASURE_LABELS, stem)],
            Outcome("mean_area", t.mean_area_px, rel_tol=0.1))
        add(f"What is the mean intensity of the blobs in {f}?", f,
            [_step(SEGMENT, stem, oracle=sharp), _step(MEASURE, stem)],
            Outcome("mean_intensity", t.mean_intensity, rel_tol=0.1))
        add(f"Label {f} with Voronoi-Otsu labeling using spot_sigma 3 and outline_sigma 1, then "
            "count the objects.", f,
            [_step(SEGMENT, stem, tools=("voronoi_otsu_labeling",), categories=(),
                   args={"spot_sigma": 3.0, "outline_sigma": 1.0},
                   oracle={"spot_sigma": 3.0, "outline_sigma": 1.0})],
            Outcome("count", t.count, abs_tol=1))
    for f in (f for f in truths if f.startswith("noisy_blobs_")):
        t, stem = truths[f], Path(f).stem
        add(f"The image {f} is very noisy. Denoise it with non-local means, then count the blobs.",
            f, [_step(DENOISE, stem, tools=("denoise_nlm",), categories=()),
                _step(SEGMENT_AFTER, stem)], Outcome("count", t.count, abs_tol=1))
        add(f"Remove the noise from {f} and segment the objects.", f,
            [_step(DENOISE, stem), _step(SEGMENT_AFTER, stem)],
            Outcome("count", t.count, abs_tol=1))
        # Counting on the raw noisy image over-splits: denoising first is part of the answer.
        add(f"How many objects are in the noisy image {f}?", f,
            [_step(DENOISE, stem), _step(SEGMENT_AFTER, stem)],
            Outcome("count", t.count, abs_tol=1))
        add(f"Denoise {f} with a non-local means strength of 1.2, segment it and measure the "
            "objects.", f,
            [_step(DENOISE, stem, tools=("denoise_nlm",), categories=(),
                   args={"strength": 1.2}, oracle={"strength": 1.2}),
             _step(SEGMENT_AFTER, stem), _step(MEASURE_LABELS, stem)],
            Outcome("mean_area", t.mean_area_px, rel_tol=0.15))
    for f in (f for f in truths if f.startswith("border_blobs_")):
        t, stem = truths[f], Path(f).stem
        add(f"Count the blobs in {f}, ignoring the ones that touch the image border.", f,
            [_step(SEGMENT, stem), _step(REMOVE_BORDER, stem)],
            Outcome("count", t.count_inner, abs_tol=1))
        add(f"Segment {f}, drop objects cut by the edge of the image, and count the rest.", f,
            [_step(SEGMENT, stem), _step(REMOVE_BORDER, stem)],
            Outcome("count", t.count_inner, abs_tol=1))
        add(f"How many blobs are in {f}, including the ones cut by the border?", f,
            [_step(SEGMENT, stem)], Outcome("count", t.count, abs_tol=1))
    f, t = "cells_calibrated.tif", truths["cells_calibrated.tif"]
    stem = Path(f).stem
    for phrase in (
        "Segment the cells in {f} and give me their areas in µm².",
        "What is the mean cell area in square micrometres in {f}?",
        "Measure the size of every object in {f} in physical units.",
    ):
        add(phrase.format(f=f), f, [_step(SEGMENT, stem, oracle=sharp),
                                    _step(MEASURE_LABELS, stem)],
            Outcome("mean_area", t.mean_area_phys, rel_tol=0.1, unit=t.unit))
    add(f"Count the cells in {f}.", f, [_step(SEGMENT, stem)],
        Outcome("count", t.count, abs_tol=1))
    f, t = "spots.tif", truths["spots.tif"]
    for phrase in ("Detect the spots in {f} and count them.",
                   "How many small spots does {f} contain? Use spot detection."):
        add(phrase.format(f=f), f, [_step(DETECT, "spots")],
            Outcome("count", t.count, abs_tol=2))
    nuclei = {"spot_sigma": 3.0}  # the oracle's choice for nuclei, larger than the blobs
    f, t = "nuclei_synthetic.tif", truths["nuclei_synthetic.tif"]
    stem = Path(f).stem
    add(f"Segment the nuclei in {f} and count them.", f, [_step(SEGMENT, stem, oracle=nuclei)],
        Outcome("count", t.count, rel_tol=0.15))
    add(f"Segment the nuclei in {f} and give me their areas in µm².", f,
        [_step(SEGMENT, stem, oracle=nuclei), _step(MEASURE_LABELS, stem)],
        Outcome("mean_area", t.mean_area_phys, rel_tol=0.25, unit=t.unit))
    add(f"Measure the mean intensity of each nucleus in {f}.", f,
        [_step(SEGMENT, stem, oracle=nuclei), _step(MEASURE, stem)],
        Outcome("mean_intensity", t.mean_intensity, rel_tol=0.15))
    f, t = "nuclei_real.tif", truths["nuclei_real.tif"]
    stem = Path(f).stem
    add(f"How many nuclei are in {f}?", f, [_step(SEGMENT, stem, oracle=nuclei)],
        Outcome("count", t.count, rel_tol=0.25))
    add(f"Segment the nuclei in {f} with StarDist and count them.", f,
        [_step(SEGMENT, stem, tools=("stardist_segment",), categories=())],
        Outcome("count", t.count, rel_tol=0.25))
    add(f"Segment the nuclei in {f} and measure their mean intensity.", f,
        [_step(SEGMENT, stem, oracle=nuclei), _step(MEASURE, stem)],
        Outcome("mean_intensity", t.mean_intensity, rel_tol=0.25))
    f, t = "movie.tif", truths["movie.tif"]
    for phrase in ("Track the nuclei in {f} and tell me how many tracks there are.",
                   "Segment every frame of {f}, link the cells over time and count the tracks."):
        add(phrase.format(f=f), f,
            [_step(SEGMENT_FRAMES, "movie"), _step(TRACK, "movie")],
            Outcome("n_tracks", t.n_tracks, rel_tol=0.2))
    return out
