"""Label movies and tracks in Cell Tracking Challenge format: write, read, validate."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import tifffile

from tools.errors import InputError

TRACK_COLUMNS = ("label", "begin", "end", "parent")


@dataclass(frozen=True, eq=False)
class CTCData:
    """Label movie and track table read from a Cell Tracking Challenge folder.

    Attributes
    ----------
    labels : np.ndarray
        ``TYX`` or ``TZYX`` label movie.
    tracks : pd.DataFrame
        Columns ``label, begin, end, parent``.
    kind : str
        ``"GT"`` (``TRA/man_track*``) or ``"RES"`` (``res_track.txt``, ``mask*.tif``).
    """

    labels: np.ndarray
    tracks: pd.DataFrame
    kind: str


def _validate_ctc(labels: np.ndarray, tracks: pd.DataFrame) -> pd.DataFrame:
    """Check a label movie against its track table; return the table as int64, sorted."""
    if not isinstance(labels, np.ndarray) or labels.ndim not in (3, 4):
        raise InputError("the label movie must be a TYX or TZYX array")
    if not np.issubdtype(labels.dtype, np.integer):
        raise InputError(f"the label movie must have an integer dtype, got {labels.dtype}")
    if labels.size and labels.min() < 0:
        raise InputError("the label movie has negative labels")
    if not isinstance(tracks, pd.DataFrame):
        raise InputError("tracks must be a pandas DataFrame with columns label, begin, end, parent")
    missing = [c for c in TRACK_COLUMNS if c not in tracks.columns]
    if missing:
        raise InputError(f"the track table lacks column(s) {missing}; need {list(TRACK_COLUMNS)}")
    table = tracks.loc[:, list(TRACK_COLUMNS)]
    values = table.to_numpy()
    if values.size and (
        not np.all(np.isfinite(values.astype(float)))
        or not np.all(values.astype(float) == np.round(values.astype(float)))
    ):
        raise InputError("the track table must hold integers only")
    table = table.astype(np.int64).sort_values("label").reset_index(drop=True)
    n_frames = labels.shape[0]
    dup = table["label"][table["label"].duplicated()]
    if not dup.empty:
        raise InputError(f"track {int(dup.iloc[0])} appears more than once in the table")
    known = set(table["label"].tolist())
    ends = dict(zip(table["label"], table["end"], strict=True))
    for row in table.itertuples(index=False):
        if row.label <= 0:
            raise InputError(f"track labels must be positive, got {row.label}")
        if not 0 <= row.begin <= row.end < n_frames:
            raise InputError(
                f"track {row.label}: begin {row.begin} and end {row.end} must satisfy "
                f"0 <= begin <= end < {n_frames} (frames in the movie)"
            )
        if row.parent != 0:
            if row.parent not in known:
                raise InputError(f"track {row.label}: parent {row.parent} is not in the table")
            if ends[row.parent] >= row.begin:
                raise InputError(
                    f"track {row.label} begins in frame {row.begin} but its parent "
                    f"{row.parent} ends in frame {ends[row.parent]}; a parent must end before "
                    "its daughters begin"
                )
    frames_of: dict[int, list[int]] = {}
    for t in range(n_frames):
        for lab in np.unique(labels[t]):
            if lab:
                frames_of.setdefault(int(lab), []).append(t)
    for lab in sorted(frames_of):
        if lab not in known:
            fr = frames_of[lab]
            raise InputError(
                f"label {lab} appears in the movie (frames {fr[0]}-{fr[-1]}) but not in the "
                "track table"
            )
    for row in table.itertuples(index=False):
        fr = frames_of.get(int(row.label))
        if not fr:
            raise InputError(
                f"track {row.label} (frames {row.begin}-{row.end}) has no pixels in the movie"
            )
        if fr[0] != row.begin or fr[-1] != row.end:
            raise InputError(
                f"track {row.label}: the table says frames {row.begin}-{row.end}, the movie "
                f"has it in frames {fr[0]}-{fr[-1]}"
            )
        if len(fr) != row.end - row.begin + 1:
            gap = sorted(set(range(row.begin, row.end + 1)) - set(fr))[0]
            raise InputError(
                f"track {row.label} is missing from frame {gap} between its begin {row.begin} "
                f"and end {row.end}"
            )
    return table


def _ctc_names(kind: str) -> tuple[str, str, str]:
    """(subfolder, track file name, mask file prefix) of a CTC kind."""
    if kind == "GT":
        return "TRA", "man_track.txt", "man_track"
    if kind == "RES":
        return "", "res_track.txt", "mask"
    raise InputError(f"kind must be 'GT' or 'RES', got {kind!r}")


def write_ctc(
    folder: str | Path,
    labels_movie: np.ndarray,
    tracks: pd.DataFrame,
    *,
    kind: Literal["GT", "RES"] = "GT",
) -> Path:
    """Write a label movie and its track table in Cell Tracking Challenge layout.

    ``kind="GT"`` writes ``folder/TRA/man_track.txt`` and ``folder/TRA/man_trackTTT.tif``;
    ``kind="RES"`` writes ``folder/res_track.txt`` and ``folder/maskTTT.tif``. Frames are
    numbered with 3 digits (4 beyond 1000 frames); masks are 16-bit TIFFs. The track file has
    one line ``label begin end parent`` per track.

    Parameters
    ----------
    folder : str or Path
        Output folder, created if needed; existing files of the same names are overwritten.
    labels_movie : np.ndarray
        Integer ``TYX`` or ``TZYX`` label movie; a track keeps its label in every frame from
        its begin to its end.
    tracks : pd.DataFrame
        Columns ``label, begin, end, parent`` (``parent`` 0 for none).
    kind : {"GT", "RES"}
        Ground-truth or result layout.

    Returns
    -------
    Path
        The track file written.

    Raises
    ------
    InputError
        Naming the first inconsistency between movie and table (a label missing from the
        table, a begin/end that does not match the frames the label occupies, a gap, an
        unknown parent or a parent that does not end before its daughter begins).
    """
    sub, track_name, prefix = _ctc_names(kind)
    table = _validate_ctc(labels_movie, tracks)
    if labels_movie.size and labels_movie.max() > np.iinfo(np.uint16).max:
        raise InputError("CTC masks are 16-bit: labels must be at most 65535")
    out = Path(folder) / sub if sub else Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    digits = max(3, len(str(labels_movie.shape[0] - 1)))
    for t, frame in enumerate(labels_movie):
        tifffile.imwrite(out / f"{prefix}{t:0{digits}d}.tif", frame.astype(np.uint16))
    track_file = out / track_name
    lines = [" ".join(str(int(v)) for v in row) for row in table.to_numpy()]
    track_file.write_text("\n".join(lines) + ("\n" if lines else ""))
    return track_file


def read_ctc(folder: str | Path) -> CTCData:
    """Read a Cell Tracking Challenge ground-truth or result folder.

    Parameters
    ----------
    folder : str or Path
        A folder holding ``TRA/man_track.txt`` (ground truth), the ``TRA`` folder itself, or a
        folder holding ``res_track.txt`` (results), with the matching ``*TTT.tif`` masks.

    Returns
    -------
    CTCData
        ``labels`` (``TYX``/``TZYX``, as stored), ``tracks`` (``label, begin, end, parent``,
        int64, sorted by label) and ``kind``.

    Raises
    ------
    InputError
        If the folder has no track file, frames are missing, or movie and table disagree.
    """
    folder = Path(folder)
    candidates = [
        (folder / "TRA", "GT"),
        (folder, "GT"),
        (folder, "RES"),
    ]
    for base, kind in candidates:
        _, track_name, prefix = _ctc_names(kind)
        if (base / track_name).is_file():
            break
    else:
        raise InputError(
            f"{folder} is not a CTC folder: expected TRA/man_track.txt or res_track.txt"
        )
    pattern = re.compile(rf"^{prefix}(\d+)\.tiff?$")
    frames = {}
    for path in base.iterdir():
        match = pattern.match(path.name)
        if match:
            frames[int(match.group(1))] = path
    if not frames:
        raise InputError(f"{base} has {track_name} but no {prefix}TTT.tif masks")
    missing = sorted(set(range(max(frames) + 1)) - set(frames))
    if missing:
        raise InputError(f"{base}: mask for frame {missing[0]} is missing")
    labels = np.stack([tifffile.imread(frames[t]) for t in range(len(frames))])
    rows = []
    for n, line in enumerate((base / track_name).read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 4 or not all(p.lstrip("-").isdigit() for p in parts):
            raise InputError(f"{base / track_name} line {n}: expected 4 integers, got {line!r}")
        rows.append([int(p) for p in parts])
    tracks = pd.DataFrame(rows, columns=list(TRACK_COLUMNS), dtype=np.int64)
    return CTCData(labels, _validate_ctc(labels, tracks), kind)
