"""Tracking: link segmented objects over time, write Cell Tracking Challenge results, score them.

A label movie (``TYX`` or ``TZYX``, one integer label image per frame) is reduced to object
centroids, which are linked frame to frame either by the linear assignment problem of Jaqaman et
al. (2008), as implemented by laptrack (frame-to-frame links, then gap closing and divisions
in a second assignment), or by a greedy nearest-neighbour baseline.

The result is a tracks table with one row per object per frame:

``track_id``
    Identity of the cell; a track survives short gaps (missed detections) when gap closing
    bridges them, and ends at a division.
``frame``, ``label``
    Where the object is: its label in that frame of the input movie.
``parent_track_id``
    The track that divided into this one (0 for none).
``tree_id``
    The lineage: the ``track_id`` of the root of the division tree.
``centroid_z_px``, ``centroid_y_px``, ``centroid_x_px``
    Centroid in pixels (array coordinates); ``centroid_*_um`` (or the image's unit) as well
    when the pixel size is known.

In the Cell Tracking Challenge (CTC) format a track may not skip frames, so
:func:`tracks_to_ctc` cuts a gap-closed track into pieces, each the single daughter of the
previous one.
"""

from __future__ import annotations

import re
import tempfile
import warnings
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from annotated_types import Ge, Gt
from skimage.measure import regionprops_table

from tools.checks import check_spacing
from tools.errors import InputError
from tools.measure import unit_suffix
from tools.registry import tool
from tools.types import Labels, PixelSize, Table

__all__ = [
    "mean_squared_displacement",
    "relabel_by_track",
    "score_tracking",
    "track_features",
    "track_objects",
    "tracks_to_ctc",
    "write_ctc_result",
]

TRACK_TABLE_COLUMNS = ("track_id", "frame", "label", "parent_track_id", "tree_id")


# --------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------


def check_movie(labels_movie: Any, *, name: str = "labels_movie") -> np.ndarray:
    """Check a label movie and return it as one array, ``TYX`` or ``TZYX``.

    A list of frames is accepted and stacked; frames of different shapes are refused with the
    index of the first frame that differs.
    """
    if isinstance(labels_movie, list | tuple):
        if not labels_movie:
            raise InputError(f"{name} has no frames")
        frames = [np.asarray(f) for f in labels_movie]
        for t, frame in enumerate(frames):
            if frame.shape != frames[0].shape:
                raise InputError(
                    f"{name}: frame {t} has shape {frame.shape} but frame 0 has shape "
                    f"{frames[0].shape}; all frames of a movie must have the same size"
                )
        labels_movie = np.stack(frames)
    if not isinstance(labels_movie, np.ndarray):
        raise InputError(f"{name} must be a numpy array, got {type(labels_movie).__name__}")
    if labels_movie.dtype == object:
        raise InputError(f"{name} is a ragged (object) array: frames must have the same shape")
    if labels_movie.ndim not in (3, 4):
        raise InputError(
            f"{name} must be a TYX or TZYX label movie (3D or 4D), got {labels_movie.ndim}D "
            f"with shape {labels_movie.shape}"
            + ("; a single 2D label image has nothing to track" if labels_movie.ndim == 2 else "")
        )
    if labels_movie.size == 0:
        raise InputError(f"{name} is empty (shape {labels_movie.shape})")
    if not np.issubdtype(labels_movie.dtype, np.integer):
        raise InputError(
            f"{name} must be an integer label movie, got dtype {labels_movie.dtype}; "
            "segment the movie first (or convert a label image read as float with astype(int))"
        )
    if labels_movie.min() < 0:
        raise InputError(f"{name} has negative values; labels are 0 (background) or positive")
    if not labels_movie.any():
        raise InputError(f"{name} has no objects in any frame: nothing to track")
    return labels_movie


def _spatial_spacing(pixel_size: PixelSize | None, ndim: int) -> tuple[tuple[float, ...], str]:
    if pixel_size is None:
        return (1.0,) * ndim, "pixel"
    return check_spacing(pixel_size.spacing, ndim), pixel_size.unit


def _check_tracks(tracks: pd.DataFrame, *, name: str = "tracks") -> pd.DataFrame:
    if not isinstance(tracks, pd.DataFrame):
        raise InputError(f"{name} must be a table (DataFrame), got {type(tracks).__name__}")
    missing = [c for c in TRACK_TABLE_COLUMNS if c not in tracks.columns]
    if missing:
        raise InputError(
            f"{name} lacks column(s) {missing}; give the table made by track_objects"
        )
    return tracks


# --------------------------------------------------------------------------------------------
# Detections
# --------------------------------------------------------------------------------------------


def _detections(movie: np.ndarray) -> pd.DataFrame:
    """One row per object per frame: frame, label and centroid in pixels."""
    spatial = "zyx"[-(movie.ndim - 1):]
    parts = []
    for t, frame in enumerate(movie):
        if not frame.any():
            continue  # empty frame: no detections; gap closing can bridge it
        props = regionprops_table(frame, properties=("label", "centroid"))
        part = pd.DataFrame({"frame": t, "label": props["label"].astype(np.int64)})
        for i, axis in enumerate(spatial):
            part[f"centroid_{axis}_px"] = props[f"centroid-{i}"]
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


# --------------------------------------------------------------------------------------------
# Linking: both methods build a directed graph on (frame, row-in-frame) nodes
# --------------------------------------------------------------------------------------------


def _link_lap(
    coords: list[np.ndarray],
    max_distance: float,
    gap_closing_frames: int,
    division_distance: float | None,
) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    from laptrack import LapTrack

    tracker = LapTrack(
        metric="sqeuclidean",
        cutoff=max_distance**2,
        gap_closing_metric="sqeuclidean",
        gap_closing_cutoff=max_distance**2 if gap_closing_frames > 0 else False,
        # laptrack counts the frame difference; bridging k missing frames spans k + 1 frames.
        gap_closing_max_frame_count=gap_closing_frames + 1,
        splitting_metric="sqeuclidean",
        splitting_cutoff=division_distance**2 if division_distance else False,
        merging_cutoff=False,
    )
    graph = tracker.predict(coords)
    return [(tuple(map(int, a)), tuple(map(int, b))) for a, b in graph.edges()]


def _link_greedy(
    coords: list[np.ndarray],
    max_distance: float,
    gap_closing_frames: int,
    division_distance: float | None,
) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """Nearest-neighbour linking: the closest free pair first, frame after frame.

    Links to the previous frame are made first; objects still free are then offered to track
    ends up to ``gap_closing_frames`` frames back; objects still free may become the second
    daughter of the nearest object of the previous frame that has one successor.
    """
    edges: list[tuple[tuple[int, int], tuple[int, int]]] = []
    n_out: dict[tuple[int, int], int] = {}
    has_in: set[tuple[int, int]] = set()

    def greedy_pairs(sources: list[tuple[int, int]], t: int, cutoff: float) -> None:
        free = [j for j in range(len(coords[t])) if (t, j) not in has_in]
        if not sources or not free:
            return
        src = np.array([coords[f][i] for f, i in sources])
        dist = np.linalg.norm(src[:, None, :] - coords[t][None, free, :], axis=-1)
        order = np.argsort(dist, axis=None, kind="stable")
        used_src: set[int] = set()
        for flat in order:
            a, b = np.unravel_index(flat, dist.shape)
            if dist[a, b] > cutoff:
                break
            target = (t, free[b])
            if a in used_src or target in has_in:
                continue
            used_src.add(int(a))
            edges.append((sources[a], target))
            n_out[sources[a]] = n_out.get(sources[a], 0) + 1
            has_in.add(target)

    for t in range(1, len(coords)):
        previous = [(t - 1, i) for i in range(len(coords[t - 1]))]
        greedy_pairs(previous, t, max_distance)
        for gap in range(2, gap_closing_frames + 2):
            if t - gap < 0:
                break
            ends = [(t - gap, i) for i in range(len(coords[t - gap])) if (t - gap, i) not in n_out]
            greedy_pairs(ends, t, max_distance)
        if division_distance:
            mothers = [node for node in previous if n_out.get(node) == 1]
            greedy_pairs(mothers, t, division_distance)
    return edges


def _graph_to_tracks(
    detections: pd.DataFrame, edges: list[tuple[tuple[int, int], tuple[int, int]]]
) -> pd.DataFrame:
    """Assign track ids along the links: a track continues through single successors."""
    successors: dict[tuple[int, int], list[tuple[int, int]]] = {}
    predecessor: dict[tuple[int, int], tuple[int, int]] = {}
    for a, b in edges:
        if b in predecessor:  # cannot happen without merging; keep the first link
            continue
        successors.setdefault(a, []).append(b)
        predecessor[b] = a
    nodes = list(zip(detections["frame"], detections.groupby("frame").cumcount(), strict=True))
    track_of: dict[tuple[int, int], int] = {}
    parent_of: dict[int, int] = {}
    next_id = 1
    for node in sorted(nodes):  # frame order: a predecessor always comes first
        before = predecessor.get(node)
        if before is not None and len(successors[before]) == 1:
            track_of[node] = track_of[before]
            continue
        track_of[node] = next_id
        parent_of[next_id] = track_of[before] if before is not None else 0
        next_id += 1
    root: dict[int, int] = {}
    for tid in sorted(parent_of):
        root[tid] = root[parent_of[tid]] if parent_of[tid] else tid
    table = detections.copy()
    table.insert(0, "track_id", [track_of[n] for n in nodes])
    table.insert(3, "parent_track_id", [parent_of[track_of[n]] for n in nodes])
    table.insert(4, "tree_id", [root[track_of[n]] for n in nodes])
    return table.sort_values(["track_id", "frame"], kind="stable").reset_index(drop=True)


@tool(category="track", output_names=("tracks",), movie=True)
def track_objects(
    labels_movie: Labels,
    max_distance: Annotated[float, Gt(0)] = 15.0,
    gap_closing_frames: Annotated[int, Ge(0)] = 1,
    allow_divisions: bool = True,
    division_distance: Annotated[float, Gt(0)] | None = None,
    method: Literal["lap", "greedy"] = "lap",
    pixel_size: PixelSize | None = None,
) -> Table:
    """Track segmented objects through a movie, with gap closing and cell divisions.

    Objects are reduced to their centroids and linked from frame to frame by solving a linear
    assignment problem (LAP, Jaqaman et al. 2008, via laptrack): all links of a frame pair are
    chosen together to minimise the summed squared distances. A second assignment closes gaps
    (an object missed for a few frames) and detects divisions (one object followed by two).
    ``method="greedy"`` links nearest neighbours first instead, a simple baseline.

    A single-frame movie gives one track per object. Empty frames are allowed (gap closing
    can bridge them). Labels need not be consecutive; the input ``label`` of each object is
    kept in the table. A 3D array is read as ``TYX``, a 4D array as ``TZYX``.

    Parameters
    ----------
    labels_movie : (T, M, N) or (T, P, M, N) ndarray of int
        Label movie, ``TYX`` or ``TZYX``: one instance label image per frame (0 background).
    max_distance : float
        Largest distance an object may move between two frames, in pixels (X pixels; Z is
        scaled by the voxel anisotropy when the pixel size is known). Larger links faster cells
        but risks swapping neighbours.
    gap_closing_frames : int
        How many frames in a row an object may be missing and still continue its track. 0
        turns gap closing off.
    allow_divisions : bool
        Whether one object may be followed by two (cell division).
    division_distance : float, optional
        Largest distance from a mother to a daughter, in pixels; ``max_distance`` by default.
    method : {"lap", "greedy"}
        ``"lap"``: linear assignment with laptrack. ``"greedy"``: nearest neighbour first.

    Returns
    -------
    tracks : DataFrame
        One row per object per frame: ``track_id``, ``frame``, ``label`` (its label in the
        input), ``parent_track_id`` (0 for none), ``tree_id`` (lineage root), centroid in
        pixels (``centroid_y_px``, ``centroid_x_px``, and ``centroid_z_px`` for 3D), and in
        physical units (e.g. ``centroid_y_um``) when the pixel size is known; ``time_min``
        (or ``time_s`` ...) when the movie's time step is known.

    References
    ----------
    .. [1] K. Jaqaman et al., "Robust single-particle tracking in live-cell time-lapse
           sequences," Nat. Methods 5, 695-702 (2008).
    .. [2] Y. T. Fukai and K. Kawaguchi, "LapTrack: linear assignment particle tracking with
           tunable metrics," Bioinformatics 39(1), btac799 (2023).

    Examples
    --------
    >>> import numpy as np
    >>> movie = np.zeros((4, 32, 32), dtype=np.int32)  # TYX
    >>> for t in range(4):
    ...     movie[t, 4:8, 4 + 3 * t : 8 + 3 * t] = 1  # moves 3 pixels right per frame
    ...     movie[t, 20:24, 20:24] = 2                # stays put
    >>> from tools.track import track_objects
    >>> tracks = track_objects(movie, max_distance=5.0)
    >>> tracks.groupby("track_id")["label"].first().tolist(), len(tracks)
    ([1, 2], 8)
    """
    movie = check_movie(labels_movie)
    if gap_closing_frames < 0:
        raise InputError(f"gap_closing_frames must be 0 or more, got {gap_closing_frames}")
    if max_distance <= 0:
        raise InputError(f"max_distance must be positive, got {max_distance}")
    if method not in ("lap", "greedy"):
        raise InputError(f"method must be 'lap' or 'greedy', got {method!r}")
    spatial_ndim = movie.ndim - 1
    spacing, unit = _spatial_spacing(pixel_size, spatial_ndim)
    detections = _detections(movie)
    pixel_cols = [c for c in detections.columns if c.startswith("centroid_")]
    # Distances in X pixels: anisotropic voxels are scaled to the X pixel size.
    scale = np.asarray(spacing) / spacing[-1]
    coords = []
    for t in range(movie.shape[0]):
        rows = detections[detections["frame"] == t]
        coords.append(rows[pixel_cols].to_numpy(dtype=np.float64).reshape(-1, spatial_ndim) * scale)
    division = (division_distance or max_distance) if allow_divisions else None
    link = _link_lap if method == "lap" else _link_greedy
    edges = link(coords, float(max_distance), int(gap_closing_frames), division)
    tracks = _graph_to_tracks(detections, edges)
    if unit != "pixel":
        for axis, size in zip("zyx"[-spatial_ndim:], spacing, strict=True):
            tracks[f"centroid_{axis}_{unit_suffix(unit)}"] = tracks[f"centroid_{axis}_px"] * size
    if pixel_size is not None and pixel_size.time_step is not None:
        # The movie's time step travels with the table, so speeds come out per time unit.
        tracks[f"time_{pixel_size.time_unit or 's'}"] = tracks["frame"] * pixel_size.time_step
    return tracks


# --------------------------------------------------------------------------------------------
# Cell Tracking Challenge format
# --------------------------------------------------------------------------------------------


def tracks_to_ctc(
    labels_movie: np.ndarray, tracks: pd.DataFrame
) -> tuple[np.ndarray, pd.DataFrame]:
    """Turn a tracks table into a CTC label movie and track table.

    Every track becomes one CTC track per run of consecutive frames: a gap-closed track is cut
    at its gaps, each piece the single daughter of the piece before, as the CTC format wants.

    Parameters
    ----------
    labels_movie : np.ndarray
        The label movie the tracks were made from.
    tracks : pd.DataFrame
        The table from :func:`track_objects`.

    Returns
    -------
    movie : np.ndarray
        ``uint16`` (``uint32`` beyond 65535 pieces) movie where each object carries its CTC
        track label.
    ctc_tracks : pd.DataFrame
        Columns ``label, begin, end, parent``.
    """
    movie = check_movie(labels_movie)
    tracks = _check_tracks(tracks)
    rows: list[list[int]] = []
    piece_of: dict[tuple[int, int], int] = {}  # (frame, input label) -> CTC label
    last_piece: dict[int, int] = {}  # track_id -> CTC label of its last piece
    ordered = tracks.sort_values(["track_id", "frame"], kind="stable")
    for tid, group in ordered.groupby("track_id", sort=True):
        frames = group["frame"].to_numpy()
        parent_tid = int(group["parent_track_id"].iloc[0])
        if parent_tid and parent_tid not in last_piece:
            raise InputError(f"track {tid}: parent track {parent_tid} is not in the table")
        parent = last_piece.get(parent_tid, 0)
        cuts = np.flatnonzero(np.diff(frames) > 1) + 1
        for run, labels in zip(
            np.split(frames, cuts), np.split(group["label"].to_numpy(), cuts), strict=True
        ):
            ctc_label = len(rows) + 1
            rows.append([ctc_label, int(run[0]), int(run[-1]), parent])
            for t, lab in zip(run, labels, strict=True):
                piece_of[(int(t), int(lab))] = ctc_label
            parent = ctc_label
        last_piece[int(tid)] = parent
    dtype = np.uint16 if len(rows) <= np.iinfo(np.uint16).max else np.uint32
    out = np.zeros(movie.shape, dtype=dtype)
    for t in range(movie.shape[0]):
        here = {lab: ctc for (f, lab), ctc in piece_of.items() if f == t}
        if not here:
            continue
        lut = np.zeros(int(movie[t].max()) + 1, dtype=dtype)
        for lab, ctc in here.items():
            if lab > movie[t].max():
                raise InputError(f"tracks name label {lab} in frame {t}, absent from the movie")
            lut[lab] = ctc
        out[t] = lut[movie[t]]
    ctc = pd.DataFrame(rows, columns=["label", "begin", "end", "parent"], dtype=np.int64)
    return out, ctc


def relabel_by_track(labels_movie: np.ndarray, tracks: pd.DataFrame) -> np.ndarray:
    """A label movie where every object carries its ``track_id`` instead of its frame label.

    Parameters
    ----------
    labels_movie : np.ndarray
        The label movie the tracks were made from.
    tracks : pd.DataFrame
        The table from :func:`track_objects`.

    Returns
    -------
    np.ndarray
        ``int32`` movie; objects absent from the table become background.
    """
    movie = check_movie(labels_movie)
    tracks = _check_tracks(tracks)
    out = np.zeros(movie.shape, dtype=np.int32)
    for t, group in tracks.groupby("frame"):
        lut = np.zeros(int(movie[int(t)].max()) + 1, dtype=np.int32)
        lut[group["label"].to_numpy()] = group["track_id"].to_numpy()
        out[int(t)] = lut[movie[int(t)]]
    return out


def write_ctc_result(
    folder: str | Path, labels_movie: np.ndarray, tracks: pd.DataFrame
) -> Path:
    """Write tracks as a Cell Tracking Challenge result: ``res_track.txt`` and ``maskTTT.tif``.

    Parameters
    ----------
    folder : str or Path
        Output folder (created if needed).
    labels_movie : np.ndarray
        The label movie the tracks were made from.
    tracks : pd.DataFrame
        The table from :func:`track_objects`.

    Returns
    -------
    Path
        The ``res_track.txt`` written.
    """
    from tools.synthetic import write_ctc

    movie, ctc = tracks_to_ctc(labels_movie, tracks)
    return write_ctc(folder, movie, ctc, kind="RES")


# --------------------------------------------------------------------------------------------
# Scoring against ground truth
# --------------------------------------------------------------------------------------------


@tool(category="quality", movie=True)
def score_tracking(
    labels_movie: Labels,
    tracks: Table,
    gt_labels: Labels,
    gt_tracks: Table,
) -> dict[str, float]:
    """Score tracks against ground truth with traccuracy: TRA and the AOGM error counts.

    Both are written as CTC folders and read back with traccuracy's loader; nodes are matched
    as in the CTC (a result object covering more than half of a true one) for the CTC metrics
    (AOGM with the CTC weights, TRA, DET, LNK), and one-to-one at IoU >= 0.5 for the division
    metrics (traccuracy's division metrics need a one-to-one matching, which the CTC rule
    does not guarantee when one result object covers two true ones).

    Parameters
    ----------
    labels_movie : (T, M, N) or (T, P, M, N) ndarray of int
        The label movie the tracks were made from.
    tracks : DataFrame
        The table from :func:`track_objects`.
    gt_labels : (T, M, N) or (T, P, M, N) ndarray of int
        Ground-truth label movie where each track keeps its label (CTC convention).
    gt_tracks : DataFrame
        Ground-truth CTC table: ``label, begin, end, parent``.

    Returns
    -------
    scores : dict
        ``TRA``, ``DET``, ``LNK``, ``AOGM``, ``fp_edges``, ``fn_edges``, ``ws_edges``,
        ``fp_nodes``, ``fn_nodes``, ``ns_nodes``, ``fp_divisions``, ``fn_divisions``,
        ``tp_divisions``, ``gt_divisions``.

    References
    ----------
    .. [1] P. Matula et al., "Cell tracking accuracy measurement based on comparison of acyclic
           oriented graphs," PLoS ONE 10(12), e0144959 (2015).
    .. [2] V. Ulman et al., "An objective comparison of cell-tracking algorithms," Nat. Methods
           14, 1141-1152 (2017).

    Examples
    --------
    Tracks made from a synthetic movie's true labels, scored against its true tracks:

    >>> from tools.synthetic import timelapse
    >>> from tools.track import score_tracking, track_objects
    >>> movie = timelapse(5, shape=(48, 48), n_cells=3, division_rate=0.0, seed=0)
    >>> tracks = track_objects(movie.labels, max_distance=10.0)
    >>> score_tracking(movie.labels, tracks, movie.labels, movie.tracks)["TRA"]
    1.0
    """
    import logging

    from traccuracy import run_metrics
    from traccuracy.loaders import load_ctc_data
    from traccuracy.matchers import CTCMatcher, IOUMatcher
    from traccuracy.metrics import CTCMetrics, DivisionMetrics

    from tools.synthetic import write_ctc

    movie = check_movie(labels_movie)
    gt = check_movie(gt_labels, name="gt_labels")
    if movie.shape != gt.shape:
        raise InputError(
            f"the result movie has shape {movie.shape} but the ground truth {gt.shape}; "
            "score tracks of the same movie"
        )
    with tempfile.TemporaryDirectory(prefix="bia_tra_") as tmp:
        write_ctc(Path(tmp) / "gt", gt, gt_tracks, kind="GT")
        write_ctc_result(Path(tmp) / "res", movie, tracks)
        # traccuracy logs a warning per run when a movie has no divisions; that is expected.
        logging.getLogger("traccuracy").setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # Each matcher annotates the graphs it is given: load a fresh pair for each.
            graphs = [
                (load_ctc_data(str(Path(tmp) / "gt" / "TRA"), name="gt"),
                 load_ctc_data(str(Path(tmp) / "res"), name="res"))
                for _ in range(2)
            ]
            ctc_results, _ = run_metrics(*graphs[0], CTCMatcher(), [CTCMetrics()])
            div_results, _ = run_metrics(
                *graphs[1], IOUMatcher(iou_threshold=0.5, one_to_one=True), [DivisionMetrics()]
            )
    ctc = ctc_results[0]["results"]
    div = div_results[0]["results"]["Frame Buffer 0"]
    out = {key: float(ctc[key]) for key in (
        "TRA", "DET", "LNK", "AOGM", "fp_edges", "fn_edges", "ws_edges",
        "fp_nodes", "fn_nodes", "ns_nodes",
    )}
    out["fp_divisions"] = float(div["False Positive Divisions"])
    out["fn_divisions"] = float(div["False Negative Divisions"])
    out["tp_divisions"] = float(div["True Positive Divisions"])
    out["gt_divisions"] = float(div["Total GT Divisions"])
    return out


# --------------------------------------------------------------------------------------------
# Per-track features
# --------------------------------------------------------------------------------------------


def _position_columns(tracks: pd.DataFrame) -> tuple[list[str], str]:
    """Centroid columns in physical units when the table has them, else in pixels."""
    physical: dict[str, list[str]] = {}
    for col in tracks.columns:
        match = re.fullmatch(r"centroid_([zyx])_(\w+)", col)
        if match and match.group(2) != "px":
            physical.setdefault(match.group(2), []).append(col)
    pixel = [c for c in tracks.columns if re.fullmatch(r"centroid_[zyx]_px", c)]
    if not pixel and not physical:
        raise InputError("the tracks table has no centroid columns; give the track_objects table")
    if physical:
        unit, cols = next(iter(physical.items()))
        return sorted(cols, key=lambda c: "zyx".index(c[9])), unit
    return sorted(pixel, key=lambda c: "zyx".index(c[9])), "px"


def _time_column(tracks: pd.DataFrame) -> tuple[float, str] | None:
    """The frame interval a ``time_<unit>`` column of a tracks table implies, if any."""
    for col in tracks.columns:
        match = re.fullmatch(r"time_(ms|s|min|h)", str(col))
        if match is None:
            continue
        later = tracks[tracks["frame"] > 0]
        if later.empty:
            return None
        ratios = later[col].to_numpy(dtype=np.float64) / later["frame"].to_numpy(np.float64)
        if np.all(np.isfinite(ratios)) and np.allclose(ratios, ratios[0]) and ratios[0] > 0:
            return float(ratios[0]), match.group(1)
    return None


def _interval(tracks: pd.DataFrame, frame_interval: float | None,
              time_unit: str | None) -> tuple[float, str]:
    """Frame interval and unit: as given, else from the table's time column, else frames."""
    if frame_interval is not None:
        return float(frame_interval), time_unit or "s"
    known = _time_column(tracks)
    if known is not None:
        return known
    return 1.0, "frame"


@tool(category="track", output_names=("track_features",))
def track_features(
    tracks: Table,
    frame_interval: Annotated[float, Gt(0)] | None = None,
    time_unit: str | None = None,
) -> Table:
    """Measure the motion of every track: displacement, path length, speed, straightness, MSD.

    Distances are in the physical unit of the tracks table when it has one (``centroid_*_um``
    columns), in pixels otherwise; times are in ``time_unit`` when ``frame_interval`` is given,
    else in the unit of the table's time column (the movie's time step, stated or from the
    file), in frames otherwise. Gaps in a track are bridged by a straight line.

    Parameters
    ----------
    tracks : DataFrame
        The tracks table from track_objects.
    frame_interval : float, optional
        Time between two frames, in ``time_unit``. By default the movie's time step; without
        one speeds are per frame.
    time_unit : str, optional
        Unit of ``frame_interval``, e.g. "s" or "min"; seconds by default.

    Returns
    -------
    features : DataFrame
        One row per track: ``track_id``, ``parent_track_id``, ``tree_id``, ``first_frame``,
        ``last_frame``, ``n_points``, ``duration``, ``path_length``, ``displacement`` (start to
        end), ``mean_speed`` (path length / duration), ``max_step``, ``straightness``
        (displacement / path length, 1 for a straight line, NaN for a one-point track) and
        ``msd_lag1`` (mean squared displacement over one frame interval). Column names carry
        the units.

    References
    ----------
    .. [1] H. Qian, M. P. Sheetz and E. L. Elson, "Single particle tracking. Analysis of
           diffusion and flow in two-dimensional systems," Biophys. J. 60, 910-921 (1991).
           (mean squared displacement)

    Examples
    --------
    One object moving 3 pixels per frame, a frame every 2 s:

    >>> import numpy as np
    >>> from tools.track import track_features, track_objects
    >>> frame = np.zeros((16, 32), dtype=np.int32)
    >>> frame[4:8, 0:4] = 1
    >>> movie = np.stack([np.roll(frame, 3 * t, axis=1) for t in range(4)])
    >>> features = track_features(track_objects(movie, max_distance=5.0), frame_interval=2.0)
    >>> features[["displacement_px", "mean_speed_px_per_s", "straightness"]].iloc[0].tolist()
    [9.0, 1.5, 1.0]
    """
    tracks = _check_tracks(tracks)
    if frame_interval is not None and frame_interval <= 0:
        raise InputError(f"frame_interval must be positive, got {frame_interval}")
    cols, unit = _position_columns(tracks)
    dt, tunit = _interval(tracks, frame_interval, time_unit)
    rows = []
    for tid, group in tracks.sort_values(["track_id", "frame"]).groupby("track_id", sort=True):
        pos = group[cols].to_numpy(dtype=np.float64)
        frames = group["frame"].to_numpy()
        steps = np.linalg.norm(np.diff(pos, axis=0), axis=1)
        path = float(steps.sum())
        duration = float(frames[-1] - frames[0]) * dt
        displacement = float(np.linalg.norm(pos[-1] - pos[0]))
        one_frame = np.diff(frames) == 1
        rows.append({
            "track_id": int(tid),
            "parent_track_id": int(group["parent_track_id"].iloc[0]),
            "tree_id": int(group["tree_id"].iloc[0]),
            "first_frame": int(frames[0]),
            "last_frame": int(frames[-1]),
            "n_points": len(frames),
            f"duration_{tunit}": duration,
            f"path_length_{unit}": path,
            f"displacement_{unit}": displacement,
            f"mean_speed_{unit}_per_{tunit}": path / duration if duration else np.nan,
            f"max_step_{unit}": float(steps.max()) if steps.size else np.nan,
            "straightness": displacement / path if path > 0 else np.nan,
            f"msd_lag1_{unit}2": float(np.mean(steps[one_frame] ** 2)) if one_frame.any()
            else np.nan,
        })
    return pd.DataFrame(rows)


@tool(category="track", output_names=("msd",))
def mean_squared_displacement(
    tracks: Table,
    max_lag: Annotated[int, Ge(1)] = 10,
    frame_interval: Annotated[float, Gt(0)] | None = None,
    time_unit: str | None = None,
) -> Table:
    """Mean squared displacement (MSD) of all tracks as a function of the time lag.

    For each lag, the squared distance between every pair of points of a track that many
    frames apart is averaged over all pairs of all tracks. A straight line at constant speed
    ``v`` gives ``MSD = (v * lag)**2``; a random walk gives ``MSD = 2 * d * D * lag`` in ``d``
    dimensions with diffusion coefficient ``D``.

    Parameters
    ----------
    tracks : DataFrame
        The tracks table from track_objects.
    max_lag : int
        Largest lag, in frames.
    frame_interval : float, optional
        Time between two frames, in ``time_unit``. By default the movie's time step (the
        table's time column); lags are in frames without one.
    time_unit : str, optional
        Unit of ``frame_interval``; seconds by default.

    Returns
    -------
    msd : DataFrame
        One row per lag with points: ``lag_frames``, ``lag`` in time units, ``msd`` (column
        name with the unit squared), ``n_pairs``.

    References
    ----------
    .. [1] H. Qian, M. P. Sheetz and E. L. Elson, "Single particle tracking. Analysis of
           diffusion and flow in two-dimensional systems," Biophys. J. 60, 910-921 (1991).

    Examples
    --------
    One object moving 3 pixels per frame: the MSD grows as (3 lag)^2.

    >>> import numpy as np
    >>> from tools.track import mean_squared_displacement, track_objects
    >>> movie = np.zeros((4, 32, 32), dtype=np.int32)
    >>> for t in range(4):
    ...     movie[t, 4:8, 4 + 3 * t : 8 + 3 * t] = 1
    >>> msd = mean_squared_displacement(track_objects(movie, max_distance=5.0), max_lag=3)
    >>> msd.filter(like="msd").iloc[:, 0].round(1).tolist()
    [9.0, 36.0, 81.0]
    """
    tracks = _check_tracks(tracks)
    if max_lag < 1:
        raise InputError(f"max_lag must be at least 1, got {max_lag}")
    cols, unit = _position_columns(tracks)
    sums = np.zeros(max_lag + 1)
    counts = np.zeros(max_lag + 1, dtype=np.int64)
    for _, group in tracks.groupby("track_id"):
        frames = group["frame"].to_numpy()
        pos = group[cols].to_numpy(dtype=np.float64)
        lag = frames[None, :] - frames[:, None]
        sq = np.sum((pos[None, :, :] - pos[:, None, :]) ** 2, axis=-1)
        keep = (lag >= 1) & (lag <= max_lag)
        np.add.at(sums, lag[keep], sq[keep])
        np.add.at(counts, lag[keep], 1)
    lags = np.flatnonzero(counts)
    dt, tunit = _interval(tracks, frame_interval, time_unit)
    return pd.DataFrame({
        "lag_frames": lags,
        f"lag_{tunit}": lags * dt,
        f"msd_{unit}2": sums[lags] / counts[lags],
        "n_pairs": counts[lags],
    })
