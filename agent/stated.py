"""What a request says about its images: pixel size, z step, time step, time or z axis.

"The pixel size is 0.2 µm", "a z-stack with 1 µm steps", "a time-lapse, 5 min per frame" are
facts about the file, not analysis steps. The planner reads them here and binds the named files
with them (:meth:`tools.workspace.Workspace.state`), so the plan starts from calibrated images
and the exported script reads the files the same way. Small models asked to write these values
into an ``open_image`` call leave them out or swap them (a z step of 1 µm written as the pixel
size); reading them is a fixed text pattern, not a decision, so no model is asked.

Only what is said plainly is read: a number with its unit next to the word for what it is. A
statement this module cannot read is left to the model, which still has ``open_image``.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["axes_in", "statement_in"]

_NUMBER = r"(\d+(?:\.\d+)?|\.\d+)"
_LENGTH = r"(nm|µm|μm|um|microns?|micrometers?|micrometres?|mm)\b"
_TIME = r"(ms|milliseconds?|s|secs?|seconds?|min|mins|minutes?|h|hrs?|hours?)\b"
_SPACE = r"\s*(?:-\s*)?"  # "0.2 µm", "0.2µm", "0.2-µm"
_FILLER = (r"(?:\s+(?:of|is|are|was|were|=|at|about|approximately|roughly|around|~|actually|"
           r"really|now|exactly|just|only))*\s*:?\s*")

# "pixel size of a.tif is ...", "for the stack"
_WHOSE = (r"(?:\s+(?:of|for|in)\s+(?:the\s+|this\s+|my\s+|a\s+)?"
          r"(?:[A-Za-z_][\w/-]*(?:\.\w+)+|images?|files?|stacks?|movies?|data))?")
_PIXEL_WORD = r"(?:pixel|pixels|px|xy|lateral|in-plane)"
_SIZE_WORD = r"(?:size|sizes|width|spacing|pitch|resolution|sampling|calibration)"
_PLANE_WORD = r"(?:slices?|planes?|sections?|z-?planes?|z-?slices?|frames? in z)"

_PIXEL_PATTERNS = [
    # "pixel size of 0.2 µm", "lateral resolution: 0.3 um", "pixels are 0.2 µm (wide)"
    rf"\b{_PIXEL_WORD}(?:\s+{_SIZE_WORD})?{_WHOSE}{_FILLER}{_NUMBER}{_SPACE}{_LENGTH}",
    # "0.2 µm per pixel", "0.2 µm/px"
    rf"{_NUMBER}{_SPACE}{_LENGTH}\s*(?:/|per|a|each)\s*(?:pixel|px)\b",
    # "0.5 µm pixels", "0.5-µm pixel size"
    rf"{_NUMBER}{_SPACE}{_LENGTH}\s*(?:pixels?|px)\b",
    # "resolution of 0.3 µm", "sampled at 0.1 µm"
    rf"\b(?:resolution|sampling|sampled|calibration|calibrated){_FILLER}{_NUMBER}{_SPACE}{_LENGTH}",
]
_VOXEL_PATTERN = (
    # "voxel size 1 x 0.5 x 0.5 µm", "voxels of 2x0.3x0.3 um" (z, y, x)
    rf"\bvoxels?(?:\s+{_SIZE_WORD})?{_WHOSE}{_FILLER}{_NUMBER}\s*(?:{_LENGTH})?\s*[x×*,]\s*{_NUMBER}"
    rf"\s*(?:{_LENGTH})?\s*[x×*,]\s*{_NUMBER}{_SPACE}{_LENGTH}"
)
_Z_PATTERNS = [
    # "z-step 1 µm", "step size of 2 um", "slice spacing: 0.5 µm", "z spacing 1 µm"
    rf"\b(?:z|step|z-step|z-spacing|{_PLANE_WORD})[\s-]*(?:{_SIZE_WORD}|step|steps|distance|"
    rf"interval|thickness|spacing)?{_WHOSE}{_FILLER}{_NUMBER}{_SPACE}{_LENGTH}",
    # "1 µm steps", "1 µm z-steps", "1 µm between slices", "1 µm apart", "1 µm in z"
    rf"{_NUMBER}{_SPACE}{_LENGTH}\s*(?:z[\s-]?)?(?:steps?|spacing|apart|intervals?|"
    rf"between(?:\s+the)?\s+{_PLANE_WORD}|in\s+z|along\s+z|{_PLANE_WORD})",
    # "slices are 1 µm apart", "planes every 2 µm"
    rf"\b{_PLANE_WORD}(?:\s+(?:are|were|taken|acquired))*\s+(?:every\s+)?{_NUMBER}{_SPACE}"
    rf"{_LENGTH}",
]
_T_PATTERNS = [
    # "5 min per frame", "10 s between frames", "30 s/frame", "2 minutes a frame"
    rf"{_NUMBER}{_SPACE}{_TIME}\s*(?:/|per|a|each|between(?:\s+the)?)\s*"
    r"(?:frames?|time\s*points?|timepoints?|images?)",
    # "every 5 min", "frame interval of 10 s", "time step 2 min", "imaged every 30 seconds"
    rf"\b(?:every|interval|time[\s-]?step|frame[\s-]?interval|time[\s-]?interval|frame[\s-]?rate)"
    rf"{_FILLER}{_NUMBER}{_SPACE}{_TIME}",
    # "5-minute intervals", "30 s intervals"
    rf"{_NUMBER}{_SPACE}{_TIME}\s*intervals?",
]
_TIME_WORDS = re.compile(
    r"\b(time[\s-]?lapse|timelapse|movie|video|time[\s-]?series|time\s*points?|timepoints?|"
    r"over\s+time|frames|per\s+frame|track|tracks|tracked|tracking|follow)\b", re.IGNORECASE)
_Z_WORDS = re.compile(
    r"\b(z[\s-]?stack|zstack|stack|slices|planes|sections|volume|volumes|3d|3-d|z[\s-]?step|"
    r"in\s+z|along\s+z|volumetric)\b", re.IGNORECASE)
_NEGATED = re.compile(
    r"\bnot\s+(?:a\s+|an\s+|in\s+)?(?:z[\s-]?stack|z|stack|volume|3d|movie|time[\s-]?lapse|"
    r"time|video)\b", re.IGNORECASE)

# A file's name says nothing about what it is ("movie.tif" may hold a z-stack).
_FILE_NAME = re.compile(r"[\w/~-]*[A-Za-z_][\w/~-]*(?:\.[\w-]+)*\.[A-Za-z][A-Za-z0-9]{1,4}\b")

_LENGTH_UNITS = {"nm": "nm", "mm": "mm"}
_TIME_UNITS = {"ms": "ms", "millisecond": "ms", "s": "s", "sec": "s", "second": "s",
               "min": "min", "minute": "min", "h": "h", "hr": "h", "hour": "h"}


def _length_unit(text: str) -> str:
    return _LENGTH_UNITS.get(text.lower(), "µm")


def _time_unit(text: str) -> str:
    word = text.lower().rstrip("s") if len(text) > 2 else text.lower()
    return _TIME_UNITS.get(word, _TIME_UNITS.get(text.lower(), "s"))


def _first(patterns: list[str], text: str) -> re.Match[str] | None:
    found = [m for p in patterns if (m := re.search(p, text, re.IGNORECASE))]
    return min(found, key=lambda m: m.start()) if found else None


def axes_in(request: str, *, ndim: int) -> str | None:
    """The axes a request gives a ``ndim``-dimensional image by its words, if any.

    Only 3D images are read this way: "a time-lapse", "movie", "20 frames", "track" make the
    first axis time (``"TYX"``); "z-stack", "slices", "volume" make it z (``"ZYX"``). A request
    that says both, or neither, or "not a z-stack", leaves the axes to the file.

    Examples
    --------
    >>> axes_in("movie.tif: it's a movie (frames over time, not z). Number of tracks?", ndim=3)
    'TYX'
    >>> axes_in("count the nuclei in every slice of the stack", ndim=3)
    'ZYX'
    >>> axes_in("count the nuclei", ndim=3) is None
    True
    """
    if ndim != 3:
        return None
    text = _NEGATED.sub(" ", _FILE_NAME.sub(" a file ", request))
    time_said = bool(_TIME_WORDS.search(text)) or bool(_first(_T_PATTERNS, text))
    z_said = bool(_Z_WORDS.search(text)) or bool(_first(_Z_PATTERNS, text))
    if time_said == z_said:
        return None
    return "TYX" if time_said else "ZYX"


def statement_in(request: str, *, ndim: int | None = None) -> dict[str, Any]:
    """The metadata a request states, as keyword arguments of ``Workspace.state``.

    Parameters
    ----------
    request : str
        What the user typed.
    ndim : int, optional
        Dimensions of the image the statement is for; axes are read only for 3D images.

    Returns
    -------
    dict
        Any of ``axes``, ``pixel_size`` (one number, or ``[z, y, x]`` from a voxel size),
        ``unit``, ``z_step``, ``time_step``, ``time_unit``; empty when nothing is stated.

    Examples
    --------
    >>> statement_in("The pixel size of a.tif is 0.2 µm. Mean area in µm²?")
    {'pixel_size': 0.2, 'unit': 'µm'}
    >>> statement_in("a z-stack with 1 µm steps and 0.5 µm pixels", ndim=3)
    {'pixel_size': 0.5, 'unit': 'µm', 'z_step': 1.0, 'axes': 'ZYX'}
    >>> statement_in("a time-lapse, 5 min per frame", ndim=3)
    {'time_step': 5.0, 'time_unit': 'min', 'axes': 'TYX'}
    >>> statement_in("segment the nuclei in a.tif")
    {}
    """
    text = " ".join(_FILE_NAME.sub(" a file ", request.replace("μ", "µ")).split())
    out: dict[str, Any] = {}
    voxel = re.search(_VOXEL_PATTERN, text, re.IGNORECASE)
    if voxel:
        z, y, x = (float(voxel.group(i)) for i in (1, 3, 5))
        out.update(pixel_size=[z, y, x], unit=_length_unit(voxel.group(6)))
    else:
        pixel = _first(_PIXEL_PATTERNS, text)
        if pixel:
            out.update(pixel_size=float(pixel.group(1)), unit=_length_unit(pixel.group(2)))
    z_match = None if voxel else _first(_Z_PATTERNS, text)
    if z_match:
        unit = _length_unit(z_match.group(2))
        if out.get("unit", unit) == unit:  # two length units: leave the z step to the model
            out["z_step"] = float(z_match.group(1))
            out.setdefault("unit", unit)
    t_match = _first(_T_PATTERNS, text)
    if t_match:
        out.update(time_step=float(t_match.group(1)), time_unit=_time_unit(t_match.group(2)))
    if ndim is not None:
        axes = axes_in(text, ndim=ndim)
        if axes is None and ndim == 3:
            z_given = "z_step" in out or isinstance(out.get("pixel_size"), list)
            axes = "ZYX" if z_given else ("TYX" if "time_step" in out else None)
        if axes is not None:
            out["axes"] = axes
    return out
