"""The agent benchmark's dataset: requests in plain words, the tools they need, the outcome.

Every request is about files that :func:`write_images` writes (seeded synthetic images with
exact ground truth; stardist's real nuclei image with its hand-made mask; plain TIFFs without
metadata whose axes or pixel size only the request states; a text file and a file outside the
workspace for the bad requests). A request lists

* the steps it needs, each a set of acceptable tools (by name, or any registered tool of a
  category, so new or renamed tools still count), with the file it must start from and the
  numbers the user gave;
* the values to answer, each with its tolerance, computed from the ground truth (the generator's
  labels or the shipped mask) and never from a tool's output;
* a gold plan in the planner's plan language (``agent.plan``): what a correct agent writes. The
  scripted oracle runs these through the planner; a gold plan is a check that the dataset is
  reachable, not an example shown to any model.

Kinds of request: ``analysis`` (a number to measure), ``question`` (plain question: no tool may
run), ``bad`` (missing file, path outside the workspace, unsupported file, impossible request:
the reply must be a clear message naming the problem, never a traceback). Requests sharing a
``conversation`` run in order in one session (follow-ups). Subset ``v1`` is the 63 requests of
the first version (ids ``A000``-``A062``, unchanged), so old and new figures compare.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from tools.types import ImageMeta

OutcomeKind = Literal["count", "mean_area", "mean_intensity", "mean_volume", "n_tracks",
                      "answer", "refusal"]
RequestKind = Literal["analysis", "question", "bad"]


@dataclass(frozen=True)
class Step:
    """One step a request needs.

    Attributes
    ----------
    tools : tuple of str
        Acceptable tool names, the preferred first (the gold plan calls that one).
    categories : tuple of str
        Any registered tool of these categories is acceptable too.
    args : dict
        Key arguments: ``{"input": stem}`` means the call must work on that file (directly or
        on an artifact made from it); other entries are parameter values the user gave.
    oracle : dict
        Arguments of the gold plan's call; ``"$file"`` is the step's input file, ``"$prev"``
        the previous step's output (the call must then be wired to that output).
    """

    tools: tuple[str, ...]
    categories: tuple[str, ...] = ()
    args: Mapping[str, Any] = field(default_factory=dict)
    oracle: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """A value the answer must state, and how close it must come.

    ``count``: objects in a label image or rows of a table (with ``where``, only the rows
    whose column passes the filter, e.g. ``"area_px > 120"``); ``mean_area`` /
    ``mean_volume`` / ``mean_intensity``: mean of a table's ``column``; ``n_tracks``: distinct
    tracks. ``answer`` (a plain question) and ``refusal`` (a bad request) carry no number.
    A value passes when ``|measured - value| <= max(abs_tol, rel_tol * value)``.
    """

    kind: OutcomeKind
    value: float = 0.0
    abs_tol: float = 0.0
    rel_tol: float = 0.0
    unit: str = "px"
    column: str = ""
    where: str = ""

    def accepts(self, measured: float | None) -> bool:
        """Whether a measured value is close enough."""
        if measured is None or not np.isfinite(measured):
            return False
        return abs(measured - self.value) <= max(self.abs_tol, self.rel_tol * abs(self.value))


@dataclass(frozen=True)
class AgentRequest:
    """One benchmark request.

    Attributes
    ----------
    id : str
        ``A000``.. (``A000``-``A062`` are subset v1).
    request : str
        What the user types.
    file : str
        The main file the request names ("" for a plain question).
    steps : tuple of Step
        The analysis steps, in order (none for questions, bad requests and pure follow-ups).
    outcome : Outcome
        The (first) value asked for.
    gold : str
        The gold plan; ``{table}`` / ``{labels}`` stand for the session's latest table / label
        artifact (follow-ups), filled in when the oracle runs.
    task : str
        Requests of one task differ only in wording or file.
    subset : str
        ``v1`` or ``v2``.
    extra : tuple of Outcome
        Further values asked for, in the order the request asks (two-file requests).
    conversation : str
        Requests with the same conversation id run in one session, by ``turn``.
    turn : int
        Position in the conversation.
    problem : tuple of str
        For bad requests: a clear message contains one of these words (case-insensitive).
    truth_note : str
        How the truth was established, where it is not a generator's labels.
    """

    id: str
    request: str
    file: str
    steps: tuple[Step, ...]
    outcome: Outcome
    gold: str = ""
    task: str = ""
    subset: str = "v1"
    extra: tuple[Outcome, ...] = ()
    conversation: str = ""
    turn: int = 0
    problem: tuple[str, ...] = ()
    truth_note: str = ""

    @property
    def outcomes(self) -> tuple[Outcome, ...]:
        """Every value asked for, in order."""
        return (self.outcome, *self.extra)

    @property
    def kind(self) -> RequestKind:
        """``analysis``, ``question`` or ``bad``."""
        if self.outcome.kind == "answer":
            return "question"
        if self.outcome.kind == "refusal":
            return "bad"
        return "analysis"


@dataclass(frozen=True)
class Truth:
    """Ground truth of one image (from its generator's labels or its shipped mask)."""

    file: str
    count: int
    count_inner: int
    mean_area_px: float
    mean_area_phys: float
    unit: str
    mean_intensity: float
    n_tracks: int = 0
    areas_px: tuple[float, ...] = ()


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
        areas_px=tuple(float(a) for a in areas),
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


def _write_plain_tiff(path: Path, data: np.ndarray) -> None:
    """A TIFF with no axes, no pixel size and no unit: what many microscopes' exports hold."""
    import tifffile

    tifffile.imwrite(path, data, metadata=None)


# Files without metadata: the request states what they are. Their stated calibration is the
# truth's calibration (the generator's pixel grid); only the request carries it.
PLAIN_PIXEL_SIZE = 0.2  # µm, stated for blobs_plain.tif
STACK_SPACING = (1.0, 0.5, 0.5)  # z, y, x in µm: stack.tif stores it, stack_plain.tif does not
COINS_BY_EYE = 24  # skimage.data.coins(), counted by eye: 4 rows of 6
OUTSIDE_FILE = "../outside.tif"  # relative to the images folder: exists, outside the workspace


def write_images(folder: str | os.PathLike[str]) -> dict[str, Truth]:
    """Write the benchmark's files into ``folder`` (if not there yet) and return their truth.

    Returns
    -------
    dict of str to Truth
        Ground truth by file name.
    """
    from tools import io, synthetic

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    truths: dict[str, Truth] = {}

    def put(name: str, image: np.ndarray, labels: np.ndarray, meta: ImageMeta, *,
            plain: bool = False) -> None:
        path = folder / name
        if not path.exists():
            if plain:
                _write_plain_tiff(path, image)
            else:
                io.write_image(path, image, meta)
        truths[name] = _truth_of(name, image, labels, meta)

    # -- v1's files (unchanged seeds: v1's truth is unchanged)
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
    first = _truth_of("movie.tif", movie.movie[0], movie.labels[0],
                      ImageMeta(axes="YX", source="synthetic"))
    truths["movie.tif"] = replace(first, n_tracks=len(movie.tracks))

    # -- v2's files
    # A 2D image without pixel size: the request states 0.2 µm.
    b = synthetic.blobs(20, shape=(256, 256), radius=(6.0, 9.0), noise=0.03, seed=600)
    stated = ImageMeta(axes="YX", spacing={"Y": PLAIN_PIXEL_SIZE, "X": PLAIN_PIXEL_SIZE},
                       unit="µm", source="synthetic")
    put("blobs_plain.tif", _hard_edged(b.labels, 600), b.labels, stated, plain=True)
    # 3D stacks: hard-edged nuclei (exact volumes); one with ZYX and calibration stored, one
    # plain (it would be read as ZYX in pixels: only the stated steps give µm³).
    spacing_meta = ImageMeta(axes="ZYX", spacing=dict(zip("ZYX", STACK_SPACING, strict=True)),
                             unit="µm", source="synthetic")
    for name, seed, plain in (("stack.tif", 11, False), ("stack_plain.tif", 12, True)):
        nuc3 = synthetic.nuclei_3d((24, 96, 96), n_nuclei=12, radius_um=(3.0, 4.5),
                                   spacing=STACK_SPACING, touching=0.0, seed=seed)
        put(name, _hard_edged(nuc3.labels, seed), nuc3.labels, spacing_meta, plain=plain)
    # A movie without metadata: movie.tif's frames (whose tracks the gold pipeline recovers)
    # stored plain, so that they read as a ZYX volume unless the user says T.
    movie2 = synthetic.timelapse(seed=3)
    path = folder / "movie_plain.tif"
    if not path.exists():
        _write_plain_tiff(path, movie2.movie)
    first = _truth_of("movie_plain.tif", movie2.movie[0], movie2.labels[0],
                      ImageMeta(axes="YX", source="synthetic"))
    truths["movie_plain.tif"] = replace(first, n_tracks=len(movie2.tracks))
    # A real photograph that ships with scikit-image (offline): 24 coins on an uneven
    # background. It has no mask: its truth is a count by eye (4 rows of 6 coins, the last one
    # cut by the right edge), so only the count is asked.
    from skimage.data import coins

    path = folder / "coins.tif"
    if not path.exists():
        io.write_image(path, coins(), ImageMeta(axes="YX", source="skimage.data.coins"))
    truths["coins.tif"] = Truth(file="coins.tif", count=COINS_BY_EYE, count_inner=0,
                                mean_area_px=0.0, mean_area_phys=0.0, unit="pixel",
                                mean_intensity=0.0)
    # Bad requests: a file that is not an image, and an image outside the workspace.
    notes = folder / "notes.txt"
    if not notes.exists():
        notes.write_text("plate layout: A1-A6 control, B1-B6 treated\n")
    outside = (folder / OUTSIDE_FILE).resolve()
    if not outside.exists():
        b = synthetic.blobs(5, shape=(64, 64), radius=(4.0, 6.0), seed=700)
        io.write_image(outside, b.image, ImageMeta(axes="YX", source="synthetic"))
    return truths


# -- steps ----------------------------------------------------------------------------------

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
BACKGROUND = Step(("rolling_ball_background", "top_hat"), categories=("background",),
                  args={"input": "$stem"}, oracle={"image": "$file"})
REMOVE_SMALL = Step(("remove_small_objects",), args={"input": "$stem"},
                    oracle={"labels": "$prev", "min_size": 200})
# Reading a file with what the user stated (axes, pixel size): the registered open_image.
OPEN = Step(("open_image",), args={"input": "$stem"}, oracle={"path": "$path"})

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


# -- gold plans -----------------------------------------------------------------------------

_OUTPUT_VARIABLE = {"denoise": "smooth", "filter": "smooth", "segment": "labels",
                    "measure": "table", "detect": "found", "track": "tracks", "open": "img"}
_TOOL_CATEGORY = {"denoise_nlm": "denoise", "rolling_ball_background": "filter",
                  "voronoi_otsu_labeling": "segment",
                  "stardist_segment": "segment", "threshold_labeling": "segment",
                  "remove_border_objects": "segment", "remove_small_objects": "segment",
                  "measure_objects": "measure",
                  "detect_spots": "detect", "track_objects": "track", "open_image": "open"}


def file_variable(file: str) -> str:
    """The plan variable a file is bound to (``python_identifier`` of its stem)."""
    from tools.registry import python_identifier

    return python_identifier(Path(file).stem)


def _literal(value: Any) -> str:
    return repr(value) if not isinstance(value, str) else '"' + value + '"'


def answer_expression(outcome: Outcome, variable: str) -> str:
    """The plan's answer form for ``outcome`` on ``variable``."""
    where = f', where="{outcome.where}"' if outcome.where else ""
    if outcome.kind in ("count", "n_tracks"):
        return f"count({variable}{where})"
    return f'mean({variable}, "{outcome.column}"{where})'


def gold_from_steps(steps: Sequence[Step], outcomes: Sequence[Outcome]) -> str:
    """The gold plan that runs each step's preferred tool with its oracle arguments."""
    lines: list[str] = []
    used: set[str] = set()
    previous: str | None = None
    last_of: dict[str, str] = {}
    for step in steps:
        tool = step.tools[0]
        stem = step.args["input"]
        base = _OUTPUT_VARIABLE.get(_TOOL_CATEGORY.get(tool, ""), "result")
        variable, n = base, 2
        while variable in used:
            variable, n = f"{base}_{n}", n + 1
        used.add(variable)
        file_var = file_variable(stem)
        args = []
        for key, value in step.oracle.items():
            if value == "$path":
                args.append(f'{key}="{stem}.tif"')
            elif value == "$file":
                args.append(f"{key}={file_var}")
            elif value == "$prev":
                args.append(f"{key}={previous or file_var}")
            else:
                args.append(f"{key}={_literal(value)}")
        lines.append(f"{variable} = {tool}({', '.join(args)})")
        previous = variable
        last_of[stem] = variable
    answers = []
    for i, outcome in enumerate(outcomes):
        # Several outcomes (two files): the i-th answers on the i-th file's last variable.
        stems = list(last_of)
        variable = last_of[stems[i]] if len(outcomes) > 1 else (previous or "")
        answers.append(answer_expression(outcome, variable))
    lines.append(f"answer({', '.join(answers)})")
    return "\n".join(lines)


def area_column(unit: str, ndim: int = 2) -> str:
    """The measurement table's size column for ``unit`` (``area_px``, ``volume_um3``)."""
    from tools.measure import unit_suffix

    name = "area" if ndim == 2 else "volume"
    return f"{name}_{unit_suffix(unit, ndim)}"


def gap_threshold(areas: Sequence[float]) -> tuple[int, int]:
    """A size threshold in the widest relative gap between the middle half of ``areas``, and
    how many objects are above it: a filter whose true count a correct analysis reaches even
    with a few per cent of error on every area."""
    values = np.sort(np.asarray(areas, dtype=float))
    lo, hi = len(values) // 4, max(len(values) // 4 + 1, 3 * len(values) // 4)
    ratios = values[lo + 1:hi + 1] / values[lo:hi]
    i = lo + int(np.argmax(ratios))
    threshold = round(float(np.sqrt(values[i] * values[i + 1])))
    return threshold, int(np.sum(values > threshold))


# -- the requests ---------------------------------------------------------------------------

_QUESTIONS = {
    "explain_voronoi_otsu": (
        "What does Voronoi-Otsu labeling do?",
        "explain voronoi otsu labelling in two sentences",
        "How does the Voronoi-Otsu method separate touching nuclei? No need to run anything.",
    ),
    "label_vs_mask": (
        "What is the difference between a label image and a binary mask?",
        "label image vs mask - what's the difference?",
        "Could you explain how an instance label image differs from a binary mask?",
    ),
    "which_denoiser": (
        "Which method would you recommend to remove noise from a fluorescence image?",
        "best way to denoise a noisy microscopy image?",
        "Before segmenting, how should I reduce noise in my images? Just explain, please.",
    ),
    "what_is_tracking": (
        "What does cell tracking mean in a time-lapse experiment?",
        "tracking: what is a track, briefly?",
        "In simple words, how are cells linked from one frame to the next when tracking?",
    ),
}


def build_requests(truths: Mapping[str, Truth]) -> list[AgentRequest]:
    """The benchmark's requests, with outcomes from ``truths`` (see :func:`write_images`)."""
    out: list[AgentRequest] = []
    subset = "v1"

    def add(request: str, file: str, steps: Sequence[Step], outcome: Outcome, *,
            task: str, gold: str | None = None, extra: Sequence[Outcome] = (),
            **kw: Any) -> None:
        if gold is None:
            gold = gold_from_steps(steps, (outcome, *extra))
        out.append(AgentRequest(f"A{len(out):03d}", request, file, tuple(steps), outcome,
                                gold=gold, task=task, subset=subset, extra=tuple(extra), **kw))

    def area(t: Truth, rel_tol: float, *, physical: bool = False) -> Outcome:
        if physical:
            return Outcome("mean_area", t.mean_area_phys, rel_tol=rel_tol, unit=t.unit,
                           column=area_column(t.unit))
        return Outcome("mean_area", t.mean_area_px, rel_tol=rel_tol, column="area_px")

    def intensity(t: Truth, rel_tol: float) -> Outcome:
        return Outcome("mean_intensity", t.mean_intensity, rel_tol=rel_tol,
                       column="mean_intensity")

    # ---- subset v1: the 63 requests of the first version, in their order ------------------
    # On the hard-edged images, little blur keeps outlines where they are (areas within 3 %,
    # the tool's default outline_sigma=2 inflates small objects by up to 30 %).
    sharp = {"outline_sigma": 1.0}
    blob_files = [f for f in truths if f.startswith("blobs_") and f != "blobs_plain.tif"]
    vo_params = {"spot_sigma": 3.0, "outline_sigma": 1.0}
    for f in blob_files:
        t, stem = truths[f], Path(f).stem
        for phrase in _COUNT_PHRASES:
            add(phrase.format(f=f), f, [_step(SEGMENT, stem)],
                Outcome("count", t.count, abs_tol=1), task="count")
        add(f"Segment the objects in {f} and measure their areas.", f,
            [_step(SEGMENT, stem, oracle=sharp), _step(MEASURE_LABELS, stem)],
            area(t, 0.1), task="mean_area")
        add(f"What is the mean intensity of the blobs in {f}?", f,
            [_step(SEGMENT, stem, oracle=sharp), _step(MEASURE, stem)],
            intensity(t, 0.1), task="mean_intensity")
        add(f"Label {f} with Voronoi-Otsu labeling using spot_sigma 3 and outline_sigma 1, then "
            "count the objects.", f,
            [_step(SEGMENT, stem, tools=("voronoi_otsu_labeling",), categories=(),
                   args=vo_params, oracle=vo_params)],
            Outcome("count", t.count, abs_tol=1), task="named_method_count")
    nlm_strength = {"strength": 1.2}
    for f in (f for f in truths if f.startswith("noisy_blobs_")):
        t, stem = truths[f], Path(f).stem
        add(f"The image {f} is very noisy. Denoise it with non-local means, then count the blobs.",
            f, [_step(DENOISE, stem, tools=("denoise_nlm",), categories=()),
                _step(SEGMENT_AFTER, stem)], Outcome("count", t.count, abs_tol=1),
            task="nlm_count")
        add(f"Remove the noise from {f} and segment the objects.", f,
            [_step(DENOISE, stem), _step(SEGMENT_AFTER, stem)],
            Outcome("count", t.count, abs_tol=1), task="denoise_count")
        # Counting on the raw noisy image over-splits: denoising first is part of the answer.
        add(f"How many objects are in the noisy image {f}?", f,
            [_step(DENOISE, stem), _step(SEGMENT_AFTER, stem)],
            Outcome("count", t.count, abs_tol=1), task="denoise_count")
        add(f"Denoise {f} with a non-local means strength of 1.2, segment it and measure the "
            "objects.", f,
            [_step(DENOISE, stem, tools=("denoise_nlm",), categories=(),
                   args=nlm_strength, oracle=nlm_strength),
             _step(SEGMENT_AFTER, stem), _step(MEASURE_LABELS, stem)],
            area(truths[f], 0.15), task="nlm_strength_area")
    for f in (f for f in truths if f.startswith("border_blobs_")):
        t, stem = truths[f], Path(f).stem
        inner = Outcome("count", t.count_inner, abs_tol=1)
        border_steps = [_step(SEGMENT, stem), _step(REMOVE_BORDER, stem)]
        add(f"Count the blobs in {f}, ignoring the ones that touch the image border.", f,
            border_steps, inner, task="border_count")
        add(f"Segment {f}, drop objects cut by the edge of the image, and count the rest.", f,
            border_steps, inner, task="border_count")
        add(f"How many blobs are in {f}, including the ones cut by the border?", f,
            [_step(SEGMENT, stem)], Outcome("count", t.count, abs_tol=1),
            task="border_included_count")
    f, t = "cells_calibrated.tif", truths["cells_calibrated.tif"]
    stem = Path(f).stem
    for phrase in (
        "Segment the cells in {f} and give me their areas in µm².",
        "What is the mean cell area in square micrometres in {f}?",
        "Measure the size of every object in {f} in physical units.",
    ):
        add(phrase.format(f=f), f, [_step(SEGMENT, stem, oracle=sharp),
                                    _step(MEASURE_LABELS, stem)],
            area(t, 0.1, physical=True), task="physical_area")
    add(f"Count the cells in {f}.", f, [_step(SEGMENT, stem)],
        Outcome("count", t.count, abs_tol=1), task="count")
    f, t = "spots.tif", truths["spots.tif"]
    for phrase in ("Detect the spots in {f} and count them.",
                   "How many small spots does {f} contain? Use spot detection."):
        add(phrase.format(f=f), f, [_step(DETECT, "spots")],
            Outcome("count", t.count, abs_tol=2), task="spot_count")
    nuclei = {"spot_sigma": 3.0}  # the oracle's choice for nuclei, larger than the blobs
    f, t = "nuclei_synthetic.tif", truths["nuclei_synthetic.tif"]
    stem = Path(f).stem
    add(f"Segment the nuclei in {f} and count them.", f, [_step(SEGMENT, stem, oracle=nuclei)],
        Outcome("count", t.count, rel_tol=0.15), task="count")
    add(f"Segment the nuclei in {f} and give me their areas in µm².", f,
        [_step(SEGMENT, stem, oracle=nuclei), _step(MEASURE_LABELS, stem)],
        area(t, 0.25, physical=True), task="physical_area")
    add(f"Measure the mean intensity of each nucleus in {f}.", f,
        [_step(SEGMENT, stem, oracle=nuclei), _step(MEASURE, stem)],
        intensity(t, 0.15), task="mean_intensity")
    f, t = "nuclei_real.tif", truths["nuclei_real.tif"]
    stem = Path(f).stem
    real_note = "truth: the nuclei mask shipped with stardist.data.test_image_nuclei_2d"
    real_count = Outcome("count", t.count, rel_tol=0.25)
    add(f"How many nuclei are in {f}?", f, [_step(SEGMENT, stem, oracle=nuclei)],
        real_count, task="count", truth_note=real_note)
    stardist_steps = [_step(SEGMENT, stem, tools=("stardist_segment",), categories=())]
    add(f"Segment the nuclei in {f} with StarDist and count them.", f, stardist_steps,
        real_count, task="stardist_count", truth_note=real_note)
    add(f"Segment the nuclei in {f} and measure their mean intensity.", f,
        [_step(SEGMENT, stem, oracle=nuclei), _step(MEASURE, stem)],
        intensity(t, 0.25), task="mean_intensity", truth_note=real_note)
    f, t = "movie.tif", truths["movie.tif"]
    movie_steps = [_step(SEGMENT_FRAMES, "movie"), _step(TRACK, "movie")]
    tracks = Outcome("n_tracks", t.n_tracks, rel_tol=0.2)
    for phrase in ("Track the nuclei in {f} and tell me how many tracks there are.",
                   "Segment every frame of {f}, link the cells over time and count the tracks."):
        add(phrase.format(f=f), f, movie_steps, tracks, task="tracks")
    assert len(out) == 63, "subset v1 is fixed at 63 requests"

    # ---- subset v2 ------------------------------------------------------------------------
    subset = "v2"
    # More wordings of v1's tasks, terse ones among them, on v1's files.
    for f, phrase in (("blobs_8.tif", "{f}: number of nuclei?"),
                      ("blobs_25.tif", "count blobs {f}"),
                      ("blobs_40.tif", "how many objects r in {f}"),
                      ("cells_calibrated.tif", "{f} - cell count please")):
        add(phrase.format(f=f), f, [_step(SEGMENT, Path(f).stem)],
            Outcome("count", truths[f].count, abs_tol=1), task="count")
    f = "nuclei_real.tif"
    for phrase in ("{f}: number of nuclei?", "nuclei count in {f}",
                   "I need the nucleus count for {f}."):
        add(phrase.format(f=f), f, [_step(SEGMENT, "nuclei_real", oracle=nuclei)],
            real_count, task="count", truth_note=real_note)
    for phrase in ("{f}: stardist nucleus count", "Run StarDist on {f}. How many nuclei?"):
        add(phrase.format(f=f), f, stardist_steps, real_count, task="stardist_count",
            truth_note=real_note)
    for f, phrase in (("blobs_15.tif", "{f}: mean object area in pixels?"),
                      ("blobs_25.tif", "What is the average size of the blobs in {f}, in px?")):
        t, stem = truths[f], Path(f).stem
        add(phrase.format(f=f), f,
            [_step(SEGMENT, stem, oracle=sharp), _step(MEASURE_LABELS, stem)],
            area(t, 0.1), task="mean_area")
    for f, phrase in (("blobs_8.tif", "{f}: average blob intensity?"),
                      ("blobs_40.tif", "How bright are the objects in {f} on average?")):
        t, stem = truths[f], Path(f).stem
        add(phrase.format(f=f), f,
            [_step(SEGMENT, stem, oracle=sharp), _step(MEASURE, stem)],
            intensity(t, 0.1), task="mean_intensity")
    for f, phrase in (
        ("blobs_15.tif", "Use voronoi_otsu_labeling on {f} with spot sigma 3 and outline "
                         "sigma 1. Number of objects?"),
        ("blobs_25.tif", "{f}: voronoi-otsu, spot_sigma=3, outline_sigma=1 -> count"),
    ):
        add(phrase.format(f=f), f,
            [_step(SEGMENT, Path(f).stem, tools=("voronoi_otsu_labeling",), categories=(),
                   args=vo_params, oracle=vo_params)],
            Outcome("count", truths[f].count, abs_tol=1), task="named_method_count")
    for f, phrase in (("noisy_blobs_10.tif", "{f}: nlm denoise, then count"),
                      ("noisy_blobs_20.tif", "Clean up {f} with non-local means denoising and "
                                             "tell me how many blobs it has.")):
        stem = Path(f).stem
        add(phrase.format(f=f), f,
            [_step(DENOISE, stem, tools=("denoise_nlm",), categories=()),
             _step(SEGMENT_AFTER, stem)],
            Outcome("count", truths[f].count, abs_tol=1), task="nlm_count")
    f = "noisy_blobs_20.tif"
    add(f"{f} is noisy - object count?", f,
        [_step(DENOISE, "noisy_blobs_20"), _step(SEGMENT_AFTER, "noisy_blobs_20")],
        Outcome("count", truths[f].count, abs_tol=1), task="denoise_count")
    for f, phrase in (("noisy_blobs_10.tif", "{f}: nlm strength 1.2, segment, mean area?"),
                      ("noisy_blobs_20.tif", "Apply non-local means with strength 1.2 to {f}, "
                                             "then segment and report the average area.")):
        stem = Path(f).stem
        add(phrase.format(f=f), f,
            [_step(DENOISE, stem, tools=("denoise_nlm",), categories=(),
                   args=nlm_strength, oracle=nlm_strength),
             _step(SEGMENT_AFTER, stem), _step(MEASURE_LABELS, stem)],
            area(truths[f], 0.15), task="nlm_strength_area")
    f = "border_blobs_24.tif"
    add(f"{f}: count blobs, excluding edge-touching ones", f,
        [_step(SEGMENT, "border_blobs_24"), _step(REMOVE_BORDER, "border_blobs_24")],
        Outcome("count", truths[f].count_inner, abs_tol=1), task="border_count")
    for f, phrase in (("border_blobs_12.tif", "{f}: total number of blobs, edge ones too"),
                      ("border_blobs_24.tif", "Count every blob in {f}, also those touching "
                                              "the border.")):
        add(phrase.format(f=f), f, [_step(SEGMENT, Path(f).stem)],
            Outcome("count", truths[f].count, abs_tol=1), task="border_included_count")
    f = "spots.tif"
    add(f"{f}: spot count (spot detector)", f, [_step(DETECT, "spots")],
        Outcome("count", truths[f].count, abs_tol=2), task="spot_count")
    f = "movie.tif"
    for phrase in ("{f}: how many cell tracks?",
                   "How many tracks do you get when you track the objects in {f}?"):
        add(phrase.format(f=f), f, movie_steps, tracks, task="tracks")
    f = "cells_calibrated.tif"
    add(f"{f}: mean cell area (µm²)?", f,
        [_step(SEGMENT, "cells_calibrated", oracle=sharp),
         _step(MEASURE_LABELS, "cells_calibrated")],
        area(truths[f], 0.1, physical=True), task="physical_area")

    # 3D stacks with stored calibration.
    f, t = "stack.tif", truths["stack.tif"]
    stack_count = Outcome("count", t.count, abs_tol=1)
    for phrase in ("How many nuclei are in the 3D stack {f}?", "{f}: nucleus count (3D)",
                   "Segment the nuclei in the volume {f} and count them."):
        add(phrase.format(f=f), f, [_step(SEGMENT, "stack", oracle=nuclei)], stack_count,
            task="stack_count")
    volume = Outcome("mean_volume", t.mean_area_phys, rel_tol=0.1, unit="µm",
                     column=area_column("µm", 3))
    for phrase in ("What is the mean nucleus volume in µm³ in {f}?",
                   "{f}: average nuclear volume, cubic micrometres",
                   "Segment the nuclei of the z-stack {f} and measure their volumes in µm³."):
        add(phrase.format(f=f), f,
            [_step(SEGMENT, "stack", oracle=nuclei), _step(MEASURE_LABELS, "stack")], volume,
            task="stack_volume")

    # Axes and calibration stated in words, on files that carry none (scored physically).
    f, t = "blobs_plain.tif", truths["blobs_plain.tif"]
    open_px = _step(OPEN, "blobs_plain", args={"pixel_size": PLAIN_PIXEL_SIZE},
                    oracle={"pixel_size": PLAIN_PIXEL_SIZE, "unit": "µm"})
    for phrase in (
        "The pixel size of {f} is 0.2 µm. What is the mean area of the blobs in square "
        "micrometres?",
        "{f}: pixels are 0.2 µm wide. Mean object area in µm²?",
        "Segment the objects in {f} and give me their average area in µm²; the image has a "
        "pixel size of 0.2 micrometres.",
    ):
        steps = [open_px, _step(SEGMENT_AFTER, "blobs_plain", oracle=sharp),
                 _step(MEASURE_LABELS, "blobs_plain")]
        add(phrase.format(f=f), f, steps, area(t, 0.1, physical=True), task="stated_area")
    f, t = "stack_plain.tif", truths["stack_plain.tif"]
    z, y, _ = STACK_SPACING
    open_stack = _step(OPEN, "stack_plain", args={"pixel_size": y, "z_step": z},
                       oracle={"axes": "ZYX", "pixel_size": y, "z_step": z, "unit": "µm"})
    stated_volume = Outcome("mean_volume", t.mean_area_phys, rel_tol=0.1, unit="µm",
                            column=area_column("µm", 3))
    for phrase in (
        "{f} is a z-stack with 1 µm steps and 0.5 µm pixels. What is the mean nucleus volume "
        "in µm³?",
        "{f}: z-step 1 µm, pixel size 0.5 µm. Average nuclear volume in cubic micrometres?",
        "The stack {f} was taken with 0.5 µm pixels and 1 µm between slices; segment the nuclei "
        "and report their mean volume in µm³.",
    ):
        steps = [open_stack, _step(SEGMENT_AFTER, "stack_plain", oracle=nuclei),
                 _step(MEASURE_LABELS, "stack_plain")]
        add(phrase.format(f=f), f, steps, stated_volume, task="stated_volume")
    f, t = "movie_plain.tif", truths["movie_plain.tif"]
    open_movie = _step(OPEN, "movie_plain", args={"axes": "TYX"}, oracle={"axes": "TYX"})
    stated_tracks = Outcome("n_tracks", t.n_tracks, rel_tol=0.2)
    for phrase in (
        "{f} is a time-lapse of cells. Track the cells and tell me how many tracks there are.",
        "{f}: it's a movie (frames over time, not z). Number of tracks?",
        "The file {f} holds 20 time points of moving nuclei. Follow them over time and count "
        "the tracks.",
        "{f} = time series, 20 frames. track cells -> track count",
    ):
        steps = [open_movie, _step(SEGMENT_FRAMES, "movie_plain", oracle={"image": "$prev"}),
                 _step(TRACK, "movie_plain")]
        add(phrase.format(f=f), f, steps, stated_tracks, task="stated_tracks")

    # A real image without a mask (truth by eye, see write_images): uneven background.
    f = "coins.tif"
    coins_note = ("truth: counted by eye on skimage.data.coins (4 rows of 6 coins); no mask "
                  "exists, so only the count is scored, within 1")
    for phrase in ("How many coins are in {f}?", "{f}: number of coins?",
                   "Count the coins in the photo {f}; the illumination is uneven."):
        add(phrase.format(f=f), f,
            [_step(BACKGROUND, "coins"),
             _step(SEGMENT_AFTER, "coins", tools=("threshold_labeling", *SEGMENT.tools),
                   oracle={"sigma": 2.0}),
             _step(REMOVE_SMALL, "coins")],
            Outcome("count", COINS_BY_EYE, abs_tol=1), task="coins_count",
            truth_note=coins_note)

    # Two files in one request: both values, in the order asked.
    for a, b, phrase in (
        ("blobs_3.tif", "blobs_8.tif", "How many blobs are in {a} and in {b}?"),
        ("blobs_15.tif", "blobs_40.tif", "Count the objects in {a} and {b}."),
        ("blobs_25.tif", "blobs_3.tif", "{a} and {b}: number of blobs in each?"),
    ):
        steps = [_step(SEGMENT, Path(a).stem), _step(SEGMENT, Path(b).stem)]
        add(phrase.format(a=a, b=b), a, steps, Outcome("count", truths[a].count, abs_tol=1),
            extra=[Outcome("count", truths[b].count, abs_tol=1)], task="two_file_count")
    for a, b, phrase in (
        ("blobs_8.tif", "blobs_40.tif", "Compare the mean blob area (px) of {a} and {b}."),
        ("blobs_15.tif", "blobs_25.tif", "{a} vs {b}: average object area in pixels for each"),
        ("blobs_40.tif", "blobs_3.tif", "Measure the objects in {a} and in {b} and give me the "
                                        "mean area of each."),
    ):
        steps = [_step(SEGMENT, Path(a).stem, oracle=sharp), _step(MEASURE_LABELS, Path(a).stem),
                 _step(SEGMENT, Path(b).stem, oracle=sharp), _step(MEASURE_LABELS, Path(b).stem)]
        add(phrase.format(a=a, b=b), a, steps, area(truths[a], 0.1),
            extra=[area(truths[b], 0.1)], task="two_file_area")

    # Follow-ups: a request sequence in one session.
    for i, (a, b, first, second) in enumerate((
        ("blobs_15.tif", "blobs_25.tif", "How many blobs are in {a}?", "Do the same for {b}."),
        ("blobs_40.tif", "blobs_8.tif", "{a}: object count?", "and {b}?"),
        ("cells_calibrated.tif", "blobs_40.tif", "Count the cells in {a}, please.",
         "Now the same analysis on {b}."),
    )):
        conversation = f"same_{i}"
        add(first.format(a=a), a, [_step(SEGMENT, Path(a).stem)],
            Outcome("count", truths[a].count, abs_tol=1), task="followup_first",
            conversation=conversation, turn=0)
        add(second.format(b=b), b, [_step(SEGMENT, Path(b).stem)],
            Outcome("count", truths[b].count, abs_tol=1), task="followup_same",
            conversation=conversation, turn=1)
    for i, (a, first, second) in enumerate((
        ("blobs_40.tif", "Segment {a} and measure the objects' areas in pixels.",
         "Now only those larger than {t} px: how many are there?"),
        ("blobs_25.tif", "{a}: segment + measure (areas, px)",
         "how many of them are bigger than {t} pixels?"),
        ("cells_calibrated.tif", "Measure the area in pixels of every cell in {a}.",
         "Of those, how many have an area above {t} px?"),
    )):
        t, stem = truths[a], Path(a).stem
        conversation = f"filter_{i}"
        add(first.format(a=a), a,
            [_step(SEGMENT, stem, oracle=sharp), _step(MEASURE_LABELS, stem)], area(t, 0.1),
            task="followup_measure", conversation=conversation, turn=0)
        threshold, above = gap_threshold(t.areas_px)
        where = f"area_px > {threshold}"
        add(second.format(t=threshold), a, [],
            Outcome("count", above, abs_tol=1, where=where), task="followup_filter",
            gold=f'answer(count({{table}}, where="{where}"))',
            conversation=conversation, turn=1,
            truth_note=f"truth: objects of the generator's labels with more than {threshold} px")

    # Plain questions: no tool may run.
    for task, phrases in _QUESTIONS.items():
        for phrase in phrases:
            add(phrase, "", [], Outcome("answer"), task=f"question_{task}",
                gold='reply("See the cited passages.")')

    # Bad requests: a clear message that names the problem, no number, never a traceback.
    for phrase in ("How many nuclei are in ghost.tif?", "ghost.tif: count cells",
                   "Segment the blobs in ghost.tif and measure their areas."):
        add(phrase, "ghost.tif", [], Outcome("refusal"), task="bad_missing_file",
            problem=("ghost.tif", "not found", "no such file", "does not exist"),
            gold="labels = voronoi_otsu_labeling(image=ghost)\nanswer(count(labels))")
    for phrase, target in ((f"How many blobs are in {OUTSIDE_FILE}?", OUTSIDE_FILE),
                           (f"{OUTSIDE_FILE}: number of objects?", OUTSIDE_FILE),
                           ("Count the nuclei in /etc/hostname.tif, please.",
                            "/etc/hostname.tif")):
        # ../outside.tif exists: only confinement can refuse it; /etc/hostname.tif does not.
        words = ("outside", "not allowed", "workspace", "permission")
        if not target.startswith(".."):
            words += ("not found", "does not exist", "no such file")
        add(phrase, target, [], Outcome("refusal"), task="bad_outside_workspace",
            problem=words,
            gold=f"labels = voronoi_otsu_labeling(image={file_variable(target)})\n"
                 "answer(count(labels))")
    for phrase in ("How many cells are in notes.txt?", "notes.txt: segment and count",
                   "Measure the objects in notes.txt."):
        add(phrase, "notes.txt", [], Outcome("refusal"), task="bad_unsupported_file",
            problem=("notes.txt", "not an image", "unsupported", "cannot read", "format"),
            gold="labels = voronoi_otsu_labeling(image=notes)\nanswer(count(labels))")
    # Impossible: an area in µm² of an image with no calibration and none stated.
    for phrase in ("What is the mean blob area of blobs_8.tif in µm²?",
                   "blobs_8.tif: mean area in square micrometres?",
                   "Give me the areas of the objects in blobs_15.tif in µm²."):
        file = "blobs_15.tif" if "blobs_15" in phrase else "blobs_8.tif"
        stem = Path(file).stem
        add(phrase, file, [], Outcome("refusal"), task="bad_no_calibration",
            problem=("pixel size", "calibrat", "µm"),
            gold=f"labels = voronoi_otsu_labeling(image={stem})\n"
                 f"table = measure_objects(labels=labels)\n"
                 f'answer(mean(table, "area_um2"))')
    # Impossible: tracking needs a time axis; a single 2D image has none.
    for phrase in ("Track the cells in blobs_15.tif over time and count the tracks.",
                   "blobs_15.tif: number of tracks?",
                   "Follow the nuclei in nuclei_synthetic.tif from frame to frame."):
        file = "nuclei_synthetic.tif" if "nuclei" in phrase else "blobs_15.tif"
        stem = Path(file).stem
        add(phrase, file, [], Outcome("refusal"), task="bad_no_time_axis",
            problem=("time", "frame", "movie", "2d", "single image"),
            gold=f"labels = voronoi_otsu_labeling(image={stem})\n"
                 "tracks = track_objects(labels_movie=labels)\nanswer(count(tracks))")

    # ---- subset v3: held out -----------------------------------------------------------------
    # Written on 2026-12-02 after the planner's rules were frozen (commit d602122) and run once:
    # new wordings of the tasks above, never shown to anyone tuning the planner or the cookbook.
    subset = "v3"
    for f, phrase in (("blobs_15.tif", "Could you tell me how many spots of signal {f} has?"),
                      ("blobs_40.tif", "{f} -> object number"),
                      ("cells_calibrated.tif", "I want the number of cells in {f}.")):
        add(phrase.format(f=f), f, [_step(SEGMENT, Path(f).stem)],
            Outcome("count", truths[f].count, abs_tol=1), task="count")
    for f, phrase in (("blobs_25.tif", "What's the typical object area in {f}, in pixels?"),
                      ("blobs_8.tif", "Find the objects in {f} and report their average "
                                      "size in px.")):
        add(phrase.format(f=f), f,
            [_step(SEGMENT, Path(f).stem, oracle=sharp), _step(MEASURE_LABELS, Path(f).stem)],
            area(truths[f], 0.1), task="mean_area")
    f = "blobs_40.tif"
    add(f"{f}: what is the mean signal per object?", f,
        [_step(SEGMENT, "blobs_40", oracle=sharp), _step(MEASURE, "blobs_40")],
        intensity(truths[f], 0.1), task="mean_intensity")
    f = "border_blobs_12.tif"
    add(f"{f}: count only the blobs lying fully inside the field of view", f,
        [_step(SEGMENT, "border_blobs_12"), _step(REMOVE_BORDER, "border_blobs_12")],
        Outcome("count", truths[f].count_inner, abs_tol=1), task="border_count")
    f = "border_blobs_24.tif"
    add(f"Give me the full blob count of {f}, partial blobs at the edges included.", f,
        [_step(SEGMENT, "border_blobs_24")], Outcome("count", truths[f].count, abs_tol=1),
        task="border_included_count")
    f = "noisy_blobs_20.tif"
    add(f"First denoise {f}, then count the objects in the cleaned image.", f,
        [_step(DENOISE, "noisy_blobs_20"), _step(SEGMENT_AFTER, "noisy_blobs_20")],
        Outcome("count", truths[f].count, abs_tol=1), task="denoise_count")
    f = "blobs_25.tif"
    add(f"Run Voronoi-Otsu labeling (spot sigma 3, outline sigma 1) on {f} and count.", f,
        [_step(SEGMENT, "blobs_25", tools=("voronoi_otsu_labeling",), categories=(),
               args=vo_params, oracle=vo_params)],
        Outcome("count", truths[f].count, abs_tol=1), task="named_method_count")
    f = "spots.tif"
    add(f"Use the spot detector on {f}: how many spots?", f, [_step(DETECT, "spots")],
        Outcome("count", truths[f].count, abs_tol=2), task="spot_count")
    f, t = "blobs_plain.tif", truths["blobs_plain.tif"]
    add(f"Each pixel of {f} is 0.2 µm across. What is the average blob area in µm²?", f,
        [open_px, _step(SEGMENT_AFTER, "blobs_plain", oracle=sharp),
         _step(MEASURE_LABELS, "blobs_plain")], area(t, 0.1, physical=True),
        task="stated_area")
    f = "stack_plain.tif"
    add(f"{f} was imaged with 0.5 µm pixels and a z spacing of 1 µm. Mean nuclear volume "
        "(µm³)?", f,
        [open_stack, _step(SEGMENT_AFTER, "stack_plain", oracle=nuclei),
         _step(MEASURE_LABELS, "stack_plain")], stated_volume, task="stated_volume")
    f = "movie_plain.tif"
    add(f"{f} is a recording over time (not a z-stack). How many cells can be tracked?", f,
        [open_movie, _step(SEGMENT_FRAMES, "movie_plain", oracle={"image": "$prev"}),
         _step(TRACK, "movie_plain")], stated_tracks, task="stated_tracks")
    f = "movie.tif"
    add(f"Link the nuclei of {f} across frames; number of trajectories?", f, movie_steps,
        tracks, task="tracks")
    f = "coins.tif"
    add(f"{f}: how many coins are lying there?", f,
        [_step(BACKGROUND, "coins"),
         _step(SEGMENT_AFTER, "coins", tools=("threshold_labeling", *SEGMENT.tools),
               oracle={"sigma": 2.0}),
         _step(REMOVE_SMALL, "coins")],
        Outcome("count", COINS_BY_EYE, abs_tol=1), task="coins_count", truth_note=coins_note)
    a, b = "blobs_8.tif", "blobs_15.tif"
    add(f"Number of objects in {a}, and in {b}?", a,
        [_step(SEGMENT, "blobs_8"), _step(SEGMENT, "blobs_15")],
        Outcome("count", truths[a].count, abs_tol=1),
        extra=[Outcome("count", truths[b].count, abs_tol=1)], task="two_file_count")
    for phrase in ("Why would I smooth an image before thresholding it?",
                   "What is a watershed segmentation, briefly?"):
        add(phrase, "", [], Outcome("answer"), task="question_held_out",
            gold='reply("See the cited passages.")')
    add("Please give me a nucleus tally for missing_plate.tif.", "missing_plate.tif", [],
        Outcome("refusal"), task="bad_missing_file",
        problem=("missing_plate.tif", "not found", "no such file", "does not exist"),
        gold="labels = voronoi_otsu_labeling(image=missing_plate)\nanswer(count(labels))")
    return out


def select(requests: Sequence[AgentRequest], subset: str | None) -> list[AgentRequest]:
    """The requests of ``subset`` (``v1``, ``v2``, a request kind, or None / ``all``)."""
    if subset in (None, "all"):
        return list(requests)
    if subset in ("analysis", "question", "bad"):
        return [r for r in requests if r.kind == subset]
    if subset == "v1+v2":
        return [r for r in requests if r.subset in ("v1", "v2")]
    chosen = [r for r in requests if r.subset == subset]
    if not chosen:
        from tools.errors import InputError

        raise InputError(f"unknown subset {subset!r}; use v1, v2, analysis, question, bad "
                         "or all")
    return chosen
