"""What the user states about a file (axes, pixel size, time step, channels), and how it wins.

Many microscopy files carry no usable metadata: a 20x192x192 TIFF may be a z-stack or a
time-lapse, and its pixel size is often missing. The user knows, and says so: "movie.tif is a
time-lapse, frames every 5 min", "the pixel size is 0.2 µm". A :class:`Statement` holds what was
said for one file; :func:`tools.io.read_image` applies it on top of the file's own metadata
(OME-XML, ImageJ, TIFF resolution tags), records the source of each value in
``meta.extra["reading"]`` and writes a one-line account of the reading
(:func:`reading_note`): "axes TYX (you stated it; the file had no axis metadata); pixel size
0.2 µm (you stated it; the file had none)". A 3D array without axis metadata is read as ``ZYX``
and the note says so, with what to state if the planes are time points.

:class:`~tools.workspace.Workspace` keeps the statements (``Workspace.state``) and applies them
on every later read of the file. :func:`open_image` is the registered tool a plan uses to state
metadata in words: ``movie = open_image(path="movie.tif", axes="TYX", time_step=5,
time_unit="min")``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

from tools.errors import CalibrationMissingError, InputError, StatedMetadataError
from tools.types import ImageMeta

__all__ = [
    "LENGTH_UNITS",
    "TIME_UNITS",
    "Statement",
    "length_unit",
    "physical_column",
    "reading_note",
    "require_calibration",
    "time_unit",
]

LENGTH_UNITS = ("nm", "µm", "mm")
"""Units a pixel size or z step may be stated in."""

TIME_UNITS = ("ms", "s", "min", "h")
"""Units a time step may be stated in."""

_LENGTH_ALIASES = {
    "nm": "nm", "nanometer": "nm", "nanometre": "nm", "nanometers": "nm", "nanometres": "nm",
    "µm": "µm", "μm": "µm", "um": "µm", "micron": "µm", "microns": "µm", "micrometer": "µm",
    "micrometre": "µm", "micrometers": "µm", "micrometres": "µm",
    "mm": "mm", "millimeter": "mm", "millimetre": "mm", "millimeters": "mm", "millimetres": "mm",
}
_TIME_ALIASES = {
    "ms": "ms", "msec": "ms", "millisecond": "ms", "milliseconds": "ms",
    "s": "s", "sec": "s", "secs": "s", "second": "s", "seconds": "s",
    "min": "min", "mins": "min", "minute": "min", "minutes": "min",
    "h": "h", "hr": "h", "hrs": "h", "hour": "h", "hours": "h",
}


def _spelling(unit: object, aliases: Mapping[str, str], problem: str) -> str:
    key = str(unit).strip().lower() if unit is not None else ""
    if key not in aliases:
        raise StatedMetadataError(f"unknown {problem.format(unit=repr(unit))}")
    return aliases[key]


def length_unit(unit: str) -> str:
    """The one spelling of a length unit a user may state: ``"um"`` -> ``"µm"``.

    ``nm``, ``µm`` (also ``um``, ``micron``, ``micrometer``) or ``mm``, in any case; anything
    else raises :class:`~tools.errors.StatedMetadataError`.

    Examples
    --------
    >>> length_unit("micron")
    'µm'
    """
    return _spelling(unit, _LENGTH_ALIASES,
                     "length unit {unit}; state the pixel size in nm, µm (or um, micron) or mm")


def time_unit(unit: str) -> str:
    """The one spelling of a time unit: ``"minutes"`` -> ``"min"``.

    ``ms``, ``s``, ``min`` or ``h`` and their long forms (``seconds``, ``minutes`` ...); anything
    else raises :class:`~tools.errors.StatedMetadataError`.

    Examples
    --------
    >>> time_unit("minutes")
    'min'
    """
    return _spelling(unit, _TIME_ALIASES,
                     "time unit {unit}; state the time step in ms, s, min or h")


MICROMETERS_PER_UNIT = {"nm": 1e-3, "µm": 1.0, "mm": 1e3, "cm": 1e4, "m": 1e6, "Å": 1e-4}
"""Length units files may use, in µm."""
_SECONDS_PER_UNIT = {"ms": 1e-3, "s": 1.0, "min": 60.0, "h": 3600.0}


def convert_length(value: float, source: str, target: str) -> float | None:
    """``value`` in ``source`` units expressed in ``target`` units; None if either is unknown."""
    if source not in MICROMETERS_PER_UNIT or target not in MICROMETERS_PER_UNIT:
        return None
    return value * MICROMETERS_PER_UNIT[source] / MICROMETERS_PER_UNIT[target]


def convert_time(value: float, source: str, target: str) -> float | None:
    """``value`` in ``source`` time units expressed in ``target``; None if either is unknown."""
    if source not in _SECONDS_PER_UNIT or target not in _SECONDS_PER_UNIT:
        return None
    return value * _SECONDS_PER_UNIT[source] / _SECONDS_PER_UNIT[target]


def _positive(name: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise StatedMetadataError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number) or number <= 0:
        raise StatedMetadataError(f"{name} must be a positive number, got {value!r}")
    return number


@dataclass(frozen=True)
class Statement:
    """What a user stated about one file; every field None means "not stated".

    Attributes
    ----------
    axes : str or None
        One letter from ``TCZYX`` per dimension, in the order the file stores them
        (``"TYX"`` for a time-lapse, ``"ZYX"`` for a z-stack, ``"CYX"`` for channels).
    pixel_size : dict of str to float, or None
        Size along ``"Y"`` and ``"X"`` (and ``"Z"`` when given per axis), in ``unit``.
    unit : str or None
        Unit of ``pixel_size`` and ``z_step``: ``"nm"``, ``"µm"`` or ``"mm"``.
    z_step : float or None
        Distance between z planes, in ``unit``.
    time_step : float or None
        Time between frames, in ``time_unit``.
    time_unit : str or None
        ``"ms"``, ``"s"``, ``"min"`` or ``"h"``.
    channel_names : tuple of str or None
        One name per channel, in order.
    """

    axes: str | None = None
    pixel_size: Mapping[str, float] | None = None
    unit: str | None = None
    z_step: float | None = None
    time_step: float | None = None
    time_unit: str | None = None
    channel_names: tuple[str, ...] | None = None

    @classmethod
    def make(
        cls,
        *,
        axes: str | None = None,
        pixel_size: float | Sequence[float] | Mapping[str, float] | None = None,
        unit: str | None = None,
        z_step: float | None = None,
        time_step: float | None = None,
        time_unit: str | None = None,
        channel_names: Sequence[str] | None = None,
    ) -> Statement:
        """Check what was stated and put it in one form.

        Parameters
        ----------
        axes : str, optional
            Letters from ``TCZYX``, one per dimension, distinct, with ``Y`` and ``X``.
        pixel_size : float or sequence of float or dict, optional
            One number (the same along Y and X), ``(y, x)``, ``(z, y, x)``, or
            ``{"Y": .., "X": .., "Z": ..}``.
        unit : str, optional
            ``nm``, ``µm`` (``um``, ``micron``) or ``mm``.
        z_step : float, optional
            Distance between planes.
        time_step : float, optional
            Time between frames.
        time_unit : str, optional
            ``ms``, ``s``, ``min`` or ``h``.
        channel_names : sequence of str, optional
            One name per channel.

        Returns
        -------
        Statement

        Raises
        ------
        StatedMetadataError
            For axes with unknown or repeated letters or without ``Y``/``X``, a pixel size, z
            step or time step that is not a positive number, an unknown unit, a unit without
            a size to go with it, a z step given twice with two values, or empty channel
            names.

        Examples
        --------
        >>> Statement.make(pixel_size=0.2, unit="um").pixel_size
        {'Y': 0.2, 'X': 0.2}
        """
        if axes is not None:
            axes = str(axes).strip().upper()
            if not axes or set(axes) - set("TCZYX") or len(set(axes)) != len(axes):
                raise StatedMetadataError(
                    f"axes {axes!r} must be distinct letters from T, C, Z, Y, X (one per "
                    "dimension of the file, e.g. 'TYX' for a time-lapse, 'ZYX' for a z-stack)"
                )
            if "Y" not in axes or "X" not in axes:
                raise StatedMetadataError(f"axes {axes!r} must include Y and X")
        sizes: dict[str, float] | None = None
        if pixel_size is not None:
            if isinstance(pixel_size, Mapping):
                sizes = {}
                for key, value in pixel_size.items():
                    letter = str(key).upper()
                    if letter not in ("Z", "Y", "X"):
                        raise StatedMetadataError(
                            f"pixel size is given per axis Z, Y, X, not {key!r}"
                        )
                    sizes[letter] = _positive(f"pixel size along {letter}", value)
            elif isinstance(pixel_size, str | bytes) or not isinstance(pixel_size, Sequence):
                size = _positive("pixel size", pixel_size)
                sizes = {"Y": size, "X": size}
            else:
                values = [_positive("pixel size", v) for v in pixel_size]
                if len(values) == 1:
                    sizes = {"Y": values[0], "X": values[0]}
                elif len(values) in (2, 3):
                    sizes = dict(zip("ZYX"[-len(values):], values, strict=True))
                else:
                    raise StatedMetadataError(
                        f"pixel size has {len(values)} values; give one, (y, x) or (z, y, x)"
                    )
            if "X" in sizes and "Y" not in sizes:
                sizes["Y"] = sizes["X"]
            if "Y" in sizes and "X" not in sizes:
                sizes["X"] = sizes["Y"]
        if z_step is not None:
            z_step = _positive("z step", z_step)
            if sizes is not None and "Z" in sizes and not math.isclose(sizes["Z"], z_step):
                raise StatedMetadataError(
                    f"the z step is stated twice with two values ({sizes['Z']:g} in the pixel "
                    f"size, {z_step:g} as z_step); give it once"
                )
        if unit is not None:
            unit = length_unit(unit)
            if sizes is None and z_step is None:
                raise StatedMetadataError(
                    f"a unit ({unit}) was given without a pixel size or z step to go with it"
                )
        if time_step is not None:
            time_step = _positive("time step", time_step)
        if time_unit is not None:
            time_unit = _time_unit(time_unit)
        names: tuple[str, ...] | None = None
        if channel_names is not None:
            if isinstance(channel_names, str):
                channel_names = [n.strip() for n in channel_names.split(",")]
            names = tuple(str(n).strip() for n in channel_names)
            if not names or any(not n for n in names):
                raise StatedMetadataError(f"channel names must be non-empty, got {channel_names!r}")
            if len(set(names)) != len(names):
                raise StatedMetadataError(f"channel names must be distinct, got {list(names)}")
        return cls(axes=axes, pixel_size=sizes, unit=unit, z_step=z_step, time_step=time_step,
                   time_unit=time_unit, channel_names=names)

    @property
    def empty(self) -> bool:
        """Whether nothing was stated."""
        return all(getattr(self, f.name) is None for f in fields(self))

    def merged(self, later: Statement) -> Statement:
        """This statement with what ``later`` states replacing it, field by field."""
        changes = {f.name: getattr(later, f.name) for f in fields(later)
                   if getattr(later, f.name) is not None}
        if "pixel_size" in changes and self.pixel_size and "Z" in self.pixel_size:
            changes["pixel_size"] = {"Z": self.pixel_size["Z"], **changes["pixel_size"]}
        return replace(self, **changes)

    def as_arguments(self) -> dict[str, Any]:
        """The stated fields as keyword arguments of :func:`tools.io.read_image`."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            if f.name == "pixel_size":
                value = dict(value)
                if set(value) == {"Y", "X"} and value["Y"] == value["X"]:
                    value = value["X"]
            elif f.name == "channel_names":
                value = list(value)
            out[f.name] = value
        return out


def reading_note(meta: ImageMeta) -> str:
    """The one-line account of how a file was read, from ``meta.extra["reading"]``.

    Parameters
    ----------
    meta : ImageMeta
        Metadata returned by :func:`tools.io.read_image`.

    Returns
    -------
    str
        E.g. ``"axes TYX (you stated it; the file had no axis metadata); pixel size 0.2 µm
        (you stated it; the file had none)"``; empty when the metadata holds no account.
    """
    reading = meta.extra.get("reading")
    if not isinstance(reading, Mapping):
        return ""
    return str(reading.get("note", ""))


def require_calibration(meta: ImageMeta | None, *, what: str = "a size in µm",
                        name: str = "the image") -> None:
    """Refuse to answer in physical units when no pixel size is known anywhere.

    Parameters
    ----------
    meta : ImageMeta or None
        Metadata of the image the answer is about.
    what : str
        What was asked, for the message (``"the area in µm²"``).
    name : str
        The image's name, for the message.

    Raises
    ------
    CalibrationMissingError
        When ``meta`` has no physical pixel size. The message says what is missing and how
        to give it.

    Examples
    --------
    >>> require_calibration(ImageMeta(axes="YX", spacing={"Y": 0.2, "X": 0.2}, unit="µm"))
    """
    if meta is not None and meta.unit != "pixel" and meta.spacing:
        return
    raise CalibrationMissingError(
        f"{what} needs the pixel size of {name}, and none is known: the file has no "
        "calibration and none was stated. Say the pixel size (e.g. 'the pixel size is 0.2 µm', "
        "--pixel-size 0.2 --unit µm, or open_image(path=..., pixel_size=0.2, unit='µm'))."
    )


_time_unit = time_unit  # Statement.make has a parameter of that name


_COLUMN_UNIT = re.compile(r"^(?P<base>.+?)_(?P<unit>px|nm|um|mm)(?P<power>[23]?)$")
_COLUMN_UNIT_NAMES = {"nm": "nm", "um": "µm", "mm": "mm"}


def _column_key(column: str) -> str:
    """``area_µm²`` -> ``area_um2``: the spelling measurement tables use."""
    return (str(column).strip().replace("µ", "u").replace("μ", "u").replace("²", "2")
            .replace("³", "3"))


def physical_column(table: Any, column: str, *, name: str = "the table") -> Any:
    """The values of ``column``, converting units when the table has them in another one.

    A request for ``area_um2`` from a table measured in nm (``area_nm2``) is converted; from
    a table measured in pixels (``area_px``, no calibration anywhere) it is an error that says
    what is missing, for the answer to pass on.

    Parameters
    ----------
    table : DataFrame
        A measurement table (columns carry their unit: ``area_um2``, ``perimeter_px``).
    column : str
        The column asked for; ``µm``/``²`` spellings are accepted (``area_µm²``).
    name : str
        The table's name, for messages.

    Returns
    -------
    Series
        The column's values, in the unit asked for.

    Raises
    ------
    CalibrationMissingError
        When the column asks for a physical unit and the table has the quantity in pixels
        only.
    InputError
        When the table has no such quantity at all (the message lists its columns).

    Examples
    --------
    >>> import pandas as pd
    >>> table = pd.DataFrame({"area_nm2": [2.0e6]})
    >>> float(physical_column(table, "area_um2").iloc[0])
    2.0
    """
    if column in table.columns:
        return table[column]
    key = _column_key(column)
    if key in table.columns:
        return table[key]
    match = _COLUMN_UNIT.match(key)
    if match is not None:
        base, unit, power = match["base"], match["unit"], match["power"]
        exponent = int(power or 1)
        for other in ("nm", "um", "mm"):
            candidate = f"{base}_{other}{power}"
            if other != unit and unit != "px" and candidate in table.columns:
                factor = convert_length(1.0, _COLUMN_UNIT_NAMES[other], _COLUMN_UNIT_NAMES[unit])
                return table[candidate] * (factor or 1.0) ** exponent
        if unit != "px" and (f"{base}_px{power}" in table.columns
                             or f"{base}_px" in table.columns):
            wanted = {1: "", 2: "²", 3: "³"}[exponent]
            raise CalibrationMissingError(
                f"{base} in {_COLUMN_UNIT_NAMES.get(unit, unit)}{wanted} needs the pixel size, "
                f"and none is known: {name} was measured in pixels (the image's file has no "
                "calibration and none was stated). Say the pixel size (e.g. 'the pixel size "
                "is 0.2 µm', --pixel-size 0.2 --unit µm, or open_image(path=..., "
                "pixel_size=0.2, unit='µm'))."
            )
    raise InputError(
        f"{name} has no column {column!r}; its columns are {', '.join(map(str, table.columns))}"
    )


# -- the one place that decides how a file is read ----------------------------------------------

_FORMAT_NAMES = {
    "ome-tiff": "OME", "imagej-tiff": "ImageJ", "tiff": "TIFF", "ome-zarr": "OME-Zarr",
    "png": "PNG", "jpeg": "JPEG",
}


def _fmt(value: float) -> str:
    return f"{value:.6g}"


def _sizes_text(sizes: Mapping[str, float], unit: str) -> str:
    """``0.2 µm`` when Y and X agree, ``0.2 x 0.25 µm (y x x)`` otherwise; Z told apart."""
    plane = [a for a in ("Y", "X") if a in sizes]
    if plane and len({sizes[a] for a in plane}) == 1:
        text = f"{_fmt(sizes[plane[0]])} {unit}"
    elif plane:
        text = " x ".join(_fmt(sizes[a]) for a in plane) + f" {unit} (y x x)"
    else:
        text = ""
    return text


def decide_reading(
    *,
    name: str,
    shape: tuple[int, ...],
    file_axes: str,
    axes_guessed: bool,
    spacing: Mapping[str, float],
    unit: str,
    extra: dict[str, Any],
    stated: Statement,
) -> tuple[str, dict[str, float], str, dict[str, Any]]:
    """Axes, pixel size, time step and channel names of a file: its metadata, then what was stated.

    This is the one place where the file's own metadata and the user's statement meet;
    :func:`tools.io.read_image` calls it for every file.

    Parameters
    ----------
    name : str
        The file's name, for messages.
    shape : tuple of int
        The array's shape in the file's own axis order.
    file_axes : str
        One letter from ``TCZYX`` per dimension as the file's metadata gives them (in the
        file's order); guessed letters where it gives none.
    axes_guessed : bool
        Whether some letters of ``file_axes`` are a guess (no axis metadata).
    spacing : dict of str to float
        The file's pixel size per spatial axis, in ``unit``.
    unit : str
        Unit of ``spacing``; ``"pixel"`` when the file has no calibration.
    extra : dict
        What else the reader found: ``format``, ``time_interval``, ``time_unit``,
        ``channel_names``.
    stated : Statement
        What the user stated; empty for none.

    Returns
    -------
    axes : str
        One letter per dimension, in the file's order.
    spacing : dict of str to float
        Pixel size per spatial axis of ``axes``, in ``unit``; empty when uncalibrated.
    unit : str
        Unit of ``spacing``, ``"pixel"`` when uncalibrated.
    extra : dict
        ``extra`` with ``time_interval``/``time_unit``/``channel_names`` as decided and
        ``reading``: for ``axes``, ``pixel_size``, ``time_step`` and ``channel_names`` the
        value, its source (``"file"``, ``"stated"``, ``"guessed"``, ``"assumed"`` or
        ``"none"``) and what the file said, plus ``note``, the account shown to the user.

    Raises
    ------
    StatedMetadataError
        When the statement cannot apply to this file: axes of another length than the
        array's dimensions, a z step for an image without a Z axis, a time step without a T
        axis, channel names without a C axis or of another count.
    """
    ndim = len(shape)
    extra = dict(extra)
    fmt = _FORMAT_NAMES.get(str(extra.get("format", "")), "file")
    reading: dict[str, Any] = {}
    notes: list[str] = []

    # Axes
    if stated.axes is not None:
        if len(stated.axes) != ndim:
            hint = {2: "'YX'", 3: "'TYX' (time-lapse), 'ZYX' (z-stack) or 'CYX' (channels)",
                    4: "'TZYX', 'CZYX' or 'TCYX'", 5: "'TCZYX'"}.get(ndim, "")
            raise StatedMetadataError(
                f"axes {stated.axes!r} have {len(stated.axes)} letters but {name} has {ndim} "
                f"dimensions (shape {tuple(shape)}); give one letter per dimension"
                + (f", e.g. {hint}" if hint else "")
            )
        axes = stated.axes
        if axes_guessed:
            why = "you said so; the file had no axis metadata"
            if axes != file_axes:
                why += f" and would have been read as {file_axes}"
        elif axes != file_axes:
            why = f"you said so; the {fmt} metadata says {file_axes}"
        else:
            why = "you said so; the file agrees"
        reading["axes"] = {"value": axes, "source": "stated", "file": file_axes,
                           "file_guessed": axes_guessed}
        if "C" not in axes:
            extra.pop("rgb", None)  # what the file stored as colour samples is not colour
    else:
        axes = file_axes
        if axes_guessed:
            source = "guessed"
            if ndim == 3 and axes == "ZYX":
                why = ("guessed: a 3D array without axis metadata is read as a z-stack; if the "
                       "planes are time points, say it is a time-lapse (axes TYX)")
            else:
                why = (f"guessed: the file has no axis metadata for all {ndim} dimensions; "
                       "state the axes if this is wrong")
        else:
            source = "file"
            # A plain image needs no account of its axes; anything more says where from.
            why = f"from the {fmt} metadata" if fmt not in ("file", "PNG", "JPEG") \
                and axes != "YX" else ""
        reading["axes"] = {"value": axes, "source": source, "file": file_axes,
                           "file_guessed": axes_guessed}
    notes.append(f"axes {axes}" + (f" ({why})" if why else ""))

    # Pixel size per spatial axis
    spatial = [a for a in axes if a in "ZYX"]
    file_calibrated = unit != "pixel" and bool(spacing)
    file_sizes = {a: float(s) for a, s in spacing.items() if a in spatial} if file_calibrated \
        else {}
    given: dict[str, float] = dict(stated.pixel_size or {})
    if stated.z_step is not None:
        given["Z"] = stated.z_step
    if "Z" in given and "Z" not in spatial:
        raise StatedMetadataError(
            f"a z step was stated for {name}, but its axes are {axes} (no Z); state "
            "axes with a Z (e.g. 'ZYX') if it is a z-stack"
        )
    sources: dict[str, str] = {}
    disagree: dict[str, float] = {}  # axis -> what the file says, in the stated unit
    if given:
        out_unit = stated.unit or "µm"
        sizes: dict[str, float] = {}
        for a in spatial:
            file_value = (convert_length(file_sizes[a], unit, out_unit)
                          if a in file_sizes else None)
            if a in given:
                sizes[a] = given[a]
                sources[a] = "stated"
                if file_value is not None and not math.isclose(file_value, given[a],
                                                               rel_tol=1e-6):
                    disagree[a] = file_value
            elif file_value is not None:
                sizes[a] = file_value
                sources[a] = "file"
        if "Z" in spatial and "Z" not in sizes and "X" in sizes:
            sizes["Z"] = sizes["X"]
            sources["Z"] = "assumed"
        plane = _sizes_text(sizes, out_unit)
        if "Y" in given or "X" in given:
            if "Y" in disagree or "X" in disagree:
                said = _sizes_text({a: disagree.get(a, sizes[a]) for a in ("Y", "X")
                                    if a in sizes}, out_unit)
                why = f"you said so; the file says {said}; yours is used"
            elif file_sizes:
                why = "you said so; the file agrees"
            else:
                why = "you said so; the file had none"
        else:
            why = f"from the {fmt} metadata"
        if stated.unit is None:
            why += "; unit not given, µm assumed"
        text = f"pixel size {plane} ({why})"
        if "Z" in sizes:
            if sources["Z"] == "stated":
                zwhy = "you said so"
                if "Z" in disagree:
                    zwhy += f"; the file says {_fmt(disagree['Z'])} {out_unit}; yours is used"
            elif sources["Z"] == "file":
                zwhy = f"from the {fmt} metadata"
            else:
                zwhy = "not known: assumed equal to the pixel size; state the z step if it differs"
            text += f", z step {_fmt(sizes['Z'])} {out_unit} ({zwhy})"
        notes.append(text)
        spacing_out, unit_out = sizes, out_unit
    elif file_sizes and all(a in file_sizes for a in spatial):
        spacing_out, unit_out = file_sizes, unit
        sources = {a: "file" for a in spatial}
        text = f"pixel size {_sizes_text(file_sizes, unit)} (from the {fmt} metadata)"
        if "Z" in file_sizes:
            text += f", z step {_fmt(file_sizes['Z'])} {unit}"
        notes.append(text)
    else:
        spacing_out, unit_out = {}, "pixel"
        notes.append("pixel size unknown (none in the file, none stated): sizes are in pixels")
    reading["pixel_size"] = {
        "value": dict(spacing_out), "unit": unit_out, "sources": sources,
        "file": dict(file_sizes), "file_unit": unit if file_sizes else "pixel",
        "file_disagrees": dict(disagree),
    }

    # Time step
    file_step = extra.get("time_interval")
    file_tunit = str(extra.get("time_unit") or "s")
    if (stated.time_step is not None or stated.time_unit is not None) and "T" not in axes:
        raise StatedMetadataError(
            f"a time step was stated for {name}, but its axes are {axes} (no T); say it "
            "is a time-lapse (axes 'TYX' or 'TZYX') if the planes are time points"
        )
    if "T" in axes:
        if stated.time_step is not None:
            tunit = stated.time_unit or "s"
            step = stated.time_step
            file_in = (convert_time(float(file_step), file_tunit, tunit)
                       if file_step is not None else None)
            if file_in is None:
                why = "you said so; the file had none"
            elif math.isclose(file_in, step, rel_tol=1e-6):
                why = "you said so; the file agrees"
            else:
                why = f"you said so; the file says {_fmt(file_in)} {tunit}; yours is used"
            if stated.time_unit is None:
                why += "; unit not given, seconds assumed"
            source = "stated"
        elif file_step is not None:
            step, tunit = float(file_step), file_tunit
            if stated.time_unit is not None:  # a unit alone re-expresses the file's step
                converted = convert_time(step, file_tunit, stated.time_unit)
                if converted is not None:
                    step, tunit = converted, stated.time_unit
            why, source = f"from the {fmt} metadata", "file"
        else:
            step, tunit, source = None, None, "none"
            why = ""
        if step is not None:
            extra["time_interval"], extra["time_unit"] = step, tunit
            notes.append(f"time step {_fmt(step)} {tunit} ({why})")
        else:
            extra.pop("time_interval", None)
            extra.pop("time_unit", None)
            notes.append("time step unknown (speeds are per frame)")
        reading["time_step"] = {"value": step, "unit": tunit, "source": source,
                                "file": file_step, "file_unit": file_tunit}

    # Channel names
    if stated.channel_names is not None:
        if "C" not in axes:
            raise StatedMetadataError(
                f"channel names were stated for {name}, but its axes are {axes} (no C); "
                "state axes with a C (e.g. 'CYX') if the planes are channels"
            )
        n_channels = shape[axes.index("C")]
        if len(stated.channel_names) != n_channels:
            raise StatedMetadataError(
                f"{len(stated.channel_names)} channel names were stated for {name}, but it "
                f"has {n_channels} channels; give one name per channel"
            )
        file_names = extra.get("channel_names")
        extra["channel_names"] = list(stated.channel_names)
        reading["channel_names"] = {"value": list(stated.channel_names), "source": "stated",
                                    "file": file_names}
        notes.append("channels " + ", ".join(stated.channel_names) + " (you said so)")
    elif extra.get("channel_names"):
        reading["channel_names"] = {"value": list(extra["channel_names"]), "source": "file"}

    reading["note"] = "; ".join(notes)
    extra["reading"] = reading
    return axes, spacing_out, unit_out, extra
