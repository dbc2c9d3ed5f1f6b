"""Read and write images, label images and tables.

Readers return a numpy array and an :class:`~tools.types.ImageMeta`: axes as letters from
``"TCZYX"``, pixel size per spatial axis and its unit, and the source path. Arrays always come
back in canonical ``TCZYX`` order (a subset of it, e.g. ``"ZYX"`` or ``"CYX"``), whatever order
the file used, so that tools can rely on ``Y`` and ``X`` being the last two axes.

Writers produce OME-TIFF (images, labels), minimal OME-Zarr, and CSV (tables). They never
replace an existing file unless asked with ``overwrite=True``, and they write to a temporary file
first, so a failed write leaves whatever was at the path untouched.

Every problem with a file or with what is to be written raises
:class:`~tools.errors.ImageFileError`, whose message names the file and the problem.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import secrets
import shutil
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tools.calibration import MICROMETERS_PER_UNIT
from tools.errors import ImageFileError
from tools.types import SPATIAL_AXES, ImageMeta, default_axes

__all__ = [
    "SUPPORTED_SUFFIXES",
    "file_sha256",
    "read_image",
    "read_table",
    "write_image",
    "write_labels",
    "write_ome_zarr",
    "write_table",
]

TIFF_SUFFIXES = (".tif", ".tiff")
PILLOW_SUFFIXES = (".png", ".jpg", ".jpeg")
ZARR_SUFFIXES = (".zarr",)
SUPPORTED_SUFFIXES = TIFF_SUFFIXES + PILLOW_SUFFIXES + ZARR_SUFFIXES
"""File name endings :func:`read_image` accepts (case-insensitive); ``.ome.tif`` is a ``.tif``."""

CANONICAL_AXES = "TCZYX"

# Spellings met in ImageJ, OME and NGFF metadata. ImageJ writes µ as the literal text "\u00B5".
_UNIT_ALIASES = {
    "µm": "µm",
    "μm": "µm",  # Greek small mu, not the micro sign
    "um": "µm",
    "micron": "µm",
    "microns": "µm",
    "micrometer": "µm",
    "micrometre": "µm",
    "micrometers": "µm",
    "\\u00b5m": "µm",
    "\\u03bcm": "µm",
    "nm": "nm",
    "nanometer": "nm",
    "nanometre": "nm",
    "mm": "mm",
    "millimeter": "mm",
    "millimetre": "mm",
    "cm": "cm",
    "centimeter": "cm",
    "centimetre": "cm",
    "m": "m",
    "meter": "m",
    "metre": "m",
    "å": "Å",
    "angstrom": "Å",
    "pixel": "pixel",
    "pixels": "pixel",
    "px": "pixel",
}
_NGFF_UNIT_NAMES = {
    "nm": "nanometer",
    "µm": "micrometer",
    "mm": "millimeter",
    "cm": "centimeter",
    "m": "meter",
    "Å": "angstrom",
}
# tifffile letters: S = samples (RGB components), the rest of TCZYX mean the same. Anything
# else (I, Q, ...) is an unnamed dimension whose meaning has to be guessed.
_TIFF_AXIS_LETTERS = {"T": "T", "C": "C", "Z": "Z", "Y": "Y", "X": "X", "S": "C"}
_NGFF_AXIS_TYPES = {"time": "T", "channel": "C"}
# OME-TIFF has no 64-bit integer or 16-bit float pixel types.
_OME_DTYPES = frozenset(
    np.dtype(t)
    for t in (
        "bool",
        "int8",
        "uint8",
        "int16",
        "uint16",
        "int32",
        "uint32",
        "float32",
        "float64",
        "complex64",
        "complex128",
    )
)
# Messages tifffile logs (instead of raising) when IFDs or tag values point past the end of the
# file or into garbage: the file then reads "successfully" with planes or metadata missing.
_TIFF_DAMAGE = re.compile(r"offset|corrupt|truncat", re.IGNORECASE)


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def read_image(
    path: str | Path,
    *,
    axes: str | None = None,
    pixel_size: float | Sequence[float] | Mapping[str, float] | None = None,
    unit: str | None = None,
    z_step: float | None = None,
    time_step: float | None = None,
    time_unit: str | None = None,
    channel_names: Sequence[str] | None = None,
) -> tuple[np.ndarray, ImageMeta]:
    """Read an image file with its axes and pixel size, and what the user stated about it.

    Parameters
    ----------
    path : str or Path
        A ``.tif``/``.tiff`` file (plain, OME-TIFF or ImageJ hyperstack), a ``.png``,
        ``.jpg``/``.jpeg`` file, or an OME-Zarr directory (``.zarr``).
    axes : str, optional
        Stated axes, one letter from ``TCZYX`` per dimension in the file's own order
        (``"TYX"``: a time-lapse). They replace the file's axes.
    pixel_size : float or sequence of float or dict, optional
        Stated pixel size in ``unit``: one number (Y and X), ``(y, x)``, ``(z, y, x)`` or a
        dict by axis letter. It replaces the file's calibration.
    unit : str, optional
        Unit of ``pixel_size`` and ``z_step``: ``nm``, ``µm`` (``um``, ``micron``) or ``mm``;
        µm when a size is stated without one.
    z_step : float, optional
        Stated distance between z planes, in ``unit``.
    time_step : float, optional
        Stated time between frames, in ``time_unit`` (seconds by default).
    time_unit : str, optional
        ``ms``, ``s``, ``min`` or ``h``.
    channel_names : sequence of str, optional
        Stated channel names, one per channel.

    Returns
    -------
    data : ndarray
        The pixel values, axes in canonical ``TCZYX`` order (e.g. ``(Z, Y, X)``).
    meta : ImageMeta
        ``axes`` (one letter per dimension of ``data``), ``spacing`` per spatial axis and its
        ``unit`` (``"µm"``, ``"nm"``, ...; ``"pixel"`` when the file has no calibration), and
        ``source`` (the path). ``extra`` holds what else the file told: ``format``,
        ``file_axes`` (the axes as the file named them), ``reading`` (the source of each
        value and the account shown to the user, see
        :func:`tools.calibration.decide_reading`), and where known ``channel_names``,
        ``time_interval``/``time_unit``, ``rgb`` and ``series_count``.

    Raises
    ------
    ImageFileError
        If the file is missing, empty, truncated, corrupt, of an unsupported type, holds no
        pixels, or holds only NaN.
    StatedMetadataError
        If a stated value is invalid (axes not matching the dimensions, a size that is not
        positive, an unknown unit, channel names not matching the channels).

    Notes
    -----
    Only the first image (series) of a multi-image TIFF and the full-resolution level of a
    pyramid are read.

    Colour PNG/JPEG/TIFF images keep their colour: the samples become a channel axis ``C``
    placed first (``"CYX"``) and ``extra["rgb"]`` is True. Converting to one luminance channel
    is left to an explicit step, because stains (H&E) and colour overlays carry information a
    fixed weighting would lose. Two exceptions: an image whose colour channels are all identical
    (a grey image saved as RGB) comes back as ``"YX"``, and a fully opaque alpha channel is
    dropped.

    Pixel size comes from OME-XML (OME-TIFF), from the resolution tags with ImageJ's ``unit``
    and ``spacing`` (ImageJ TIFF), from resolution tags in centimetres (other TIFFs), or from
    the level-0 ``scale`` transformation (OME-Zarr). Resolution in inches is ignored: it is
    almost always a 72 dpi default, not a calibration. PNG and JPEG carry no calibration.

    What is stated wins over the file; where the file disagrees, ``extra["reading"]`` and its
    note say so. A 3D array without axis metadata is read as ``ZYX``, and the note says that
    this was a guess and how to state a time-lapse instead.

    Examples
    --------
    >>> import numpy as np, tifffile, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "movie.tif"
    >>> tifffile.imwrite(path, np.zeros((6, 16, 16), np.uint16))
    >>> data, meta = read_image(path, axes="TYX", pixel_size=0.2, unit="um")
    >>> meta.axes, meta.spacing, meta.unit
    ('TYX', {'Y': 0.2, 'X': 0.2}, 'µm')
    >>> print(meta.extra["reading"]["note"].replace("); ", ");\\n"))
    axes TYX (you said so; the file had no axis metadata and would have been read as ZYX);
    pixel size 0.2 µm (you said so; the file had none);
    time step unknown (speeds are per frame)
    """
    from tools.calibration import Statement

    stated = Statement.make(axes=axes, pixel_size=pixel_size, unit=unit, z_step=z_step,
                            time_step=time_step, time_unit=time_unit,
                            channel_names=channel_names)
    path = Path(path).expanduser()
    suffix = path.suffix.lower()
    if not path.exists():
        raise ImageFileError(path, "file not found")
    if path.is_dir():
        if suffix not in ZARR_SUFFIXES:
            raise ImageFileError(
                path,
                "is a directory, not an image file; only OME-Zarr directories (.zarr) "
                "are read as images",
            )
    elif suffix not in SUPPORTED_SUFFIXES:
        raise ImageFileError(
            path,
            f"unsupported file type {path.suffix!r}; supported: {', '.join(SUPPORTED_SUFFIXES)}",
        )
    elif suffix in ZARR_SUFFIXES:
        raise ImageFileError(path, "is a file, but an OME-Zarr image is a directory")
    elif path.stat().st_size == 0:
        raise ImageFileError(path, "file is empty (0 bytes)")

    if suffix in TIFF_SUFFIXES:
        raw = _read_tiff(path)
    elif suffix in PILLOW_SUFFIXES:
        raw = _read_pillow(path)
    else:
        raw = _read_ome_zarr(path)

    data = raw.data
    if data.size == 0:
        raise ImageFileError(path, f"image holds no pixels (shape {data.shape})")
    if np.issubdtype(data.dtype, np.inexact) and np.isnan(data).all():
        raise ImageFileError(path, "every pixel is NaN; the image holds no data")
    return _decide(path, raw, stated)


def apply_statement(data: np.ndarray, meta: ImageMeta | None, stated: Any, *,
                    name: str) -> tuple[np.ndarray, ImageMeta]:
    """Apply a statement to an array that did not come from a file (a notebook variable).

    Parameters
    ----------
    data : ndarray
        The array, in the order its ``meta.axes`` give.
    meta : ImageMeta or None
        Its metadata; axes from :func:`~tools.types.default_axes` when None.
    stated : Statement
        What the user stated (:class:`tools.calibration.Statement`); axes in array order.
    name : str
        The array's name, for messages.

    Returns
    -------
    data : ndarray
        The array, axes in canonical ``TCZYX`` order.
    meta : ImageMeta
        The metadata with the statement applied; ``extra["reading"]`` says how.
    """
    if meta is None:
        meta = ImageMeta(axes=default_axes(data.ndim), source="memory")
    # Arrays made in code carry default axes unless someone set them: a guess, like a file's
    # unnamed dimensions.
    guessed = meta.source in ("memory", "tool") or meta.source.startswith("notebook:")
    raw = _Raw(data, meta.axes, guessed, dict(meta.spacing), meta.unit, dict(meta.extra))
    out, new = _decide(Path(name), raw, stated)
    new.source = meta.source
    return out, new


@dataclass
class _Raw:
    """What a reader found, before the statement is applied: data in the file's axis order."""

    data: np.ndarray
    axes: str  # distinct letters from TCZYX, in the file's order (guessed where unnamed)
    guessed: bool
    spacing: dict[str, float]
    unit: str
    extra: dict[str, Any]


def _raw(path: Path, data: np.ndarray, file_axes: str, spacing: dict[str, float], unit: str,
         extra: dict[str, Any]) -> _Raw:
    guessed = any(letter not in _TIFF_AXIS_LETTERS for letter in file_axes.upper())
    return _Raw(data, _map_file_axes(path, file_axes), guessed, spacing, unit, extra)


def _decide(path: Path, raw: _Raw, stated: Any) -> tuple[np.ndarray, ImageMeta]:
    """Apply the statement to what the file says, then put the axes in canonical order."""
    from tools.calibration import decide_reading

    if raw.data.ndim != len(raw.axes):
        raise ImageFileError(path, f"axes {raw.axes!r} do not match the array shape "
                                   f"{raw.data.shape}")
    axes, spacing, unit, extra = decide_reading(
        name=path.name, shape=tuple(raw.data.shape), file_axes=raw.axes,
        axes_guessed=raw.guessed, spacing=raw.spacing, unit=raw.unit, extra=raw.extra,
        stated=stated,
    )
    data, axes = _to_canonical(path, raw.data, axes)
    spacing = {a: s for a, s in spacing.items() if a in axes}
    if not spacing:
        unit = "pixel"
    return data, ImageMeta(axes=axes, spacing=spacing, unit=unit, source=str(path), extra=extra)


def _read_tiff(path: Path) -> _Raw:
    import tifffile

    file_size = path.stat().st_size
    with _tifffile_errors() as logged:
        try:
            with tifffile.TiffFile(path) as tif:
                if not tif.series or not tif.pages:
                    detail = f" ({logged.warnings[0]})" if logged.warnings else ""
                    raise ImageFileError(
                        path, f"TIFF file holds no image; it is damaged or truncated{detail}"
                    )
                series = tif.series[0]
                _check_tiff_complete(path, series, file_size)
                data = series.asarray()
                file_axes = series.axes
                extra: dict[str, Any] = {"format": "tiff", "series_count": len(tif.series)}
                if tif.is_ome and tif.ome_metadata:
                    extra["format"] = "ome-tiff"
                    spacing, unit = _ome_tiff_calibration(tif.ome_metadata, extra)
                elif tif.is_imagej and tif.imagej_metadata is not None:
                    extra["format"] = "imagej-tiff"
                    spacing, unit = _imagej_calibration(series.pages[0], tif.imagej_metadata, extra)
                else:
                    spacing, unit = _tag_calibration(series.pages[0])
                photometric = getattr(series.pages[0], "photometric", None)
        except ImageFileError:
            raise
        except Exception as exc:
            # tifffile, numpy and the codecs raise many unrelated types on bad bytes; all of
            # them mean the same to a user: this file cannot be read as a TIFF.
            raise ImageFileError(
                path, f"cannot read as TIFF; the file is damaged or not a TIFF ({exc})"
            ) from exc
    if logged.damage:
        raise ImageFileError(path, f"TIFF file is damaged or truncated ({logged.damage[0]})")

    if "S" in file_axes and photometric is not None and int(photometric) == 2:  # RGB
        extra["rgb"] = True
    extra["file_axes"] = file_axes
    return _raw(path, data, file_axes, spacing, unit, extra)


class _TiffLog(logging.Handler):
    """Keeps what tifffile logs: its warnings, and the errors that mean a damaged file."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.warnings: list[str] = []
        self.damage: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        self.warnings.append(message)
        if record.levelno >= logging.ERROR and _TIFF_DAMAGE.search(message):
            self.damage.append(message)


@contextlib.contextmanager
def _tifffile_errors() -> Iterator[_TiffLog]:
    """Collect what tifffile logs while the block runs."""
    handler = _TiffLog()
    logger = logging.getLogger("tifffile")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def _check_tiff_complete(path: Path, series: Any, file_size: int) -> None:
    """Refuse a TIFF whose planes are missing or whose pixel data runs past the end of file.

    tifffile fills missing or unreadable planes with zeros rather than failing, which would
    hand back an image that looks plausible and is wrong.
    """
    for page in series.pages:
        if page is None:
            raise ImageFileError(
                path,
                "image data is incomplete: some planes are missing (a multi-file "
                "OME-TIFF whose other files are absent, or a damaged file)",
            )
        offsets = getattr(page, "dataoffsets", ()) or ()
        counts = getattr(page, "databytecounts", ()) or ()
        for offset, count in zip(offsets, counts, strict=False):
            if count and offset + count > file_size:
                raise ImageFileError(
                    path,
                    f"TIFF file is truncated: pixel data ends at byte {offset + count} "
                    f"but the file has {file_size} bytes",
                )


def _ome_tiff_calibration(ome_xml: str, extra: dict[str, Any]) -> tuple[dict[str, float], str]:
    import tifffile

    ome = tifffile.xml2dict(ome_xml).get("OME", {})
    image = ome.get("Image", {})
    if isinstance(image, list):
        image = image[0] if image else {}
    pixels = image.get("Pixels", {}) or {}
    channels = pixels.get("Channel", [])
    if isinstance(channels, dict):
        channels = [channels]
    names = [str(c["Name"]) for c in channels if isinstance(c, dict) and "Name" in c]
    if names:
        extra["channel_names"] = names
    if _positive_float(pixels.get("TimeIncrement")) is not None:
        extra["time_interval"] = float(pixels["TimeIncrement"])
        extra["time_unit"] = str(pixels.get("TimeIncrementUnit", "s"))

    sizes: dict[str, tuple[float, str]] = {}
    for axis in SPATIAL_AXES:
        size = _positive_float(pixels.get(f"PhysicalSize{axis}"))
        if size is not None:
            # The OME schema's default unit for PhysicalSize is the micrometre.
            sizes[axis] = (size, _normalize_unit(pixels.get(f"PhysicalSize{axis}Unit", "µm")))
    return _common_unit(sizes)


def _imagej_calibration(
    page: Any, ij: dict[str, Any], extra: dict[str, Any]
) -> tuple[dict[str, float], str]:
    if _positive_float(ij.get("finterval")) is not None:
        extra["time_interval"] = float(ij["finterval"])
        extra["time_unit"] = "s"
    unit = _normalize_unit(ij.get("unit"))
    if unit == "pixel":
        return {}, "pixel"
    x = _resolution_to_size(page, "XResolution")
    y = _resolution_to_size(page, "YResolution") or x
    if x is None or y is None:
        return {}, "pixel"
    # ImageJ omits "spacing" when the voxel depth is 1 unit.
    z = _positive_float(ij.get("spacing")) or 1.0
    return {"Z": z, "Y": y, "X": x}, unit


def _tag_calibration(page: Any) -> tuple[dict[str, float], str]:
    tag = page.tags.get("ResolutionUnit")
    if tag is None or int(tag.value) != 3:  # only CENTIMETER is a real calibration
        return {}, "pixel"
    x = _resolution_to_size(page, "XResolution")
    y = _resolution_to_size(page, "YResolution") or x
    if x is None or y is None:
        return {}, "pixel"
    return {"Y": y * 1e4, "X": x * 1e4}, "µm"


def _resolution_to_size(page: Any, name: str) -> float | None:
    """Pixel size from a resolution tag, which stores pixels per unit as a fraction."""
    tag = page.tags.get(name)
    if tag is None:
        return None
    value = tag.value
    try:
        per_unit = value[0] / value[1] if isinstance(value, tuple) else float(value)
    except (TypeError, ValueError, ZeroDivisionError, IndexError):
        return None
    return 1.0 / per_unit if np.isfinite(per_unit) and per_unit > 0 else None


def _read_pillow(path: Path) -> _Raw:
    import imageio.v3 as iio

    kind = "JPEG" if path.suffix.lower() in (".jpg", ".jpeg") else "PNG"
    try:
        data = np.asarray(iio.imread(path, plugin="pillow", index=0))
    except Exception as exc:
        # Pillow raises OSError, SyntaxError, ValueError or zlib errors on damaged files.
        raise ImageFileError(
            path,
            f"cannot decode as a {kind} image; the file is damaged, truncated or "
            f"not a {kind} ({exc})",
        ) from exc
    extra: dict[str, Any] = {"format": kind.lower(), "file_axes": "YX"}
    axes = "YX"
    if data.ndim == 3:
        extra["file_axes"] = "YXS"
        data, has_color = _simplify_samples(data, extra)
        if data.ndim == 3:
            extra["rgb"] = has_color
            data = np.ascontiguousarray(np.moveaxis(data, -1, 0))
            axes = "CYX"
    elif data.ndim != 2:
        raise ImageFileError(path, f"unexpected {kind} array shape {data.shape}")
    return _Raw(data, axes, False, {}, "pixel", extra)


def _simplify_samples(data: np.ndarray, extra: dict[str, Any]) -> tuple[np.ndarray, bool]:
    """Drop an opaque alpha channel and collapse identical colour channels to grey."""
    if data.shape[-1] in (2, 4) and data.dtype.kind in "iu":
        alpha = data[..., -1]
        if alpha.min() == alpha.max() == np.iinfo(data.dtype).max:
            data = data[..., :-1]
            extra["alpha_dropped"] = True
    if data.shape[-1] == 1:
        return data[..., 0], False
    if data.shape[-1] == 3 and (data == data[..., :1]).all():
        return data[..., 0], False
    return data, data.shape[-1] >= 3


def _read_ome_zarr(path: Path) -> _Raw:
    import zarr

    try:
        group = zarr.open_group(str(path), mode="r")
        attrs = group.attrs.asdict()
        multiscales = _ngff_multiscales(attrs)
        if multiscales is None and "0" in group:
            # bioformats2raw layout: the image lives in the sub-group "0".
            child = group["0"]
            if isinstance(child, zarr.Group):
                group = child
                attrs = group.attrs.asdict()
                multiscales = _ngff_multiscales(attrs)
    except Exception as exc:
        raise ImageFileError(
            path, f"cannot open as a Zarr group; the directory is not an OME-Zarr ({exc})"
        ) from exc
    if not multiscales:
        raise ImageFileError(
            path, "Zarr store has no OME-NGFF 'multiscales' metadata; only OME-Zarr images are read"
        )
    try:
        multiscale = multiscales[0]
        level0 = multiscale["datasets"][0]
        data = np.asarray(group[level0["path"]][...])
        file_axes, spacing, unit = _ngff_axes_and_scale(multiscale, level0, data.ndim)
    except ImageFileError:
        raise
    except Exception as exc:
        raise ImageFileError(
            path, f"OME-Zarr is damaged or its metadata malformed ({exc})"
        ) from exc
    extra: dict[str, Any] = {
        "format": "ome-zarr",
        # NGFF 0.5 moved the version from each multiscale to the "ome" block.
        "ngff_version": str(multiscale.get("version") or attrs.get("ome", {}).get("version", "")),
        "file_axes": file_axes,
    }
    return _raw(path, data, file_axes, spacing, unit, extra)


def _ngff_multiscales(attrs: dict[str, Any]) -> list[dict[str, Any]] | None:
    # NGFF 0.5 (Zarr v3) nests the metadata under "ome"; 0.4 and earlier keep it at the top.
    ome = attrs.get("ome")
    if isinstance(ome, dict) and ome.get("multiscales"):
        return ome["multiscales"]
    return attrs.get("multiscales") or None


def _ngff_axes_and_scale(
    multiscale: dict[str, Any], level0: dict[str, Any], ndim: int
) -> tuple[str, dict[str, float], str]:
    """Axis letters (``?`` for unknown), spacing and unit of level 0 of an NGFF multiscale."""
    raw_axes = multiscale.get("axes")
    if raw_axes is None:
        # NGFF 0.1/0.2 had no axes field and always meant 5D TCZYX.
        raw_axes = list("tczyx")[-ndim:]
    if len(raw_axes) != ndim:
        raise ValueError(f"{len(raw_axes)} axes in metadata for a {ndim}-D array")
    letters, units = [], []
    for axis in raw_axes:
        if isinstance(axis, str):  # NGFF 0.3: axes are plain names
            axis = {"name": axis}
        name = str(axis.get("name", "")).upper()
        letter = name if len(name) == 1 and name in CANONICAL_AXES else "?"
        if letter == "?":
            letter = _NGFF_AXIS_TYPES.get(str(axis.get("type", "")), "?")
        letters.append(letter)
        units.append(axis.get("unit"))

    scale = np.ones(ndim)
    for transforms in (
        level0.get("coordinateTransformations"),
        multiscale.get("coordinateTransformations"),
    ):
        for transform in transforms or []:
            if transform.get("type") == "scale" and "scale" in transform:
                scale = scale * np.asarray(transform["scale"], dtype=float)

    sizes: dict[str, tuple[float, str]] = {}
    for letter, factor, unit in zip(letters, scale, units, strict=True):
        if letter in SPATIAL_AXES and np.isfinite(factor) and factor > 0:
            sizes[letter] = (float(factor), _normalize_unit(unit))
    spacing, unit = _common_unit(sizes)
    return "".join(letters), spacing, unit


def _map_file_axes(path: Path, file_axes: str) -> str:
    """Turn a file's axis letters into distinct letters from ``TCZYX``.

    Unnamed dimensions (tifffile's ``I``, ``Q``, ...) get the letters :func:`default_axes`
    would give an array of their count plus the ``Y``/``X`` axes, e.g. ``IYX`` -> ``ZYX``.
    """
    mapped = [_TIFF_AXIS_LETTERS.get(letter) for letter in file_axes.upper()]
    known = [m for m in mapped if m is not None]
    if len(set(known)) != len(known):
        raise ImageFileError(path, f"cannot interpret the file's axes {file_axes!r}")
    unknown = mapped.count(None)
    if unknown:
        n_guess = unknown + sum(m in ("Y", "X") for m in known)
        pool = default_axes(n_guess) if 2 <= n_guess <= 5 else ""
        pool += "TCZ"
        free = [a for a in dict.fromkeys(pool) if a not in known]
        if len(free) < unknown:
            raise ImageFileError(
                path,
                f"image has {len(file_axes)} dimensions ({file_axes!r}); at most 5 "
                "(TCZYX) are supported",
            )
        fill = iter(free)
        mapped = [m if m is not None else next(fill) for m in mapped]
    return "".join(m for m in mapped if m is not None)


def _to_canonical(path: Path, data: np.ndarray, axes: str) -> tuple[np.ndarray, str]:
    if data.ndim != len(axes):
        raise ImageFileError(path, f"axes {axes!r} do not match the array shape {data.shape}")
    order = sorted(range(len(axes)), key=lambda i: CANONICAL_AXES.index(axes[i]))
    if order == list(range(len(axes))):
        return data, axes
    return np.ascontiguousarray(data.transpose(order)), "".join(axes[i] for i in order)


def _normalize_unit(unit: object) -> str:
    """One spelling per unit: ``"µm"``, ``"nm"``, ``"mm"``...; ``"pixel"`` when none."""
    if unit is None:
        return "pixel"
    text = str(unit).strip()
    if not text:
        return "pixel"
    return _UNIT_ALIASES.get(text.lower(), text)


def _common_unit(sizes: dict[str, tuple[float, str]]) -> tuple[dict[str, float], str]:
    """Express per-axis sizes in one unit, converting to µm only when the file mixes units."""
    units = {u for _, u in sizes.values()}
    if not sizes or units == {"pixel"}:
        return {}, "pixel"
    if len(units) == 1:
        return {a: s for a, (s, _) in sizes.items()}, units.pop()
    if all(u in MICROMETERS_PER_UNIT for u in units):
        return {a: s * MICROMETERS_PER_UNIT[u] for a, (s, u) in sizes.items()}, "µm"
    return {}, "pixel"


def _positive_float(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if np.isfinite(number) and number > 0 else None


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def write_image(
    path: str | Path, data: np.ndarray, meta: ImageMeta, *, overwrite: bool = False
) -> Path:
    """Write an image as OME-TIFF, keeping its axes, pixel size and unit.

    Parameters
    ----------
    path : str or Path
        Target file, ending in ``.tif`` or ``.tiff`` (``.ome.tif`` is customary). Missing
        parent folders are created.
    data : ndarray
        The image; finite values, at least one pixel, one dimension per letter of
        ``meta.axes``.
    meta : ImageMeta
        Axes, spacing and unit to store.
    overwrite : bool, optional
        Replace an existing file. By default an existing file is an error.

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    ImageFileError
        If the file exists and ``overwrite`` is False, the suffix is not a TIFF one, the array
        is empty, holds NaN or infinity, has a type OME-TIFF cannot store, or does not match
        ``meta.axes``, or if writing fails.

    Notes
    -----
    Axes are written in canonical ``TCZYX`` order (the array is transposed if needed), which
    is also the order :func:`read_image` returns. 64-bit integers are narrowed to 32 bits and
    float16 widened to float32, as OME-TIFF has no such pixel types; 64-bit integers that do
    not fit in 32 bits are refused rather than silently changed. Colour images are written as
    separate channels, not as an RGB TIFF.
    """
    path = _check_target(path, TIFF_SUFFIXES, overwrite=overwrite)
    data, axes = _check_array(path, data, meta)
    data = _ome_storable(path, data)
    _write_ome_tiff(path, data, axes, meta, compression=None)
    return path


def write_labels(
    path: str | Path, labels: np.ndarray, meta: ImageMeta, *, overwrite: bool = False
) -> Path:
    """Write a label image as OME-TIFF in the smallest unsigned type that holds its labels.

    Parameters
    ----------
    path : str or Path
        Target file, ending in ``.tif`` or ``.tiff``. Missing parent folders are created.
    labels : ndarray
        Integer (or boolean) label image, 0 for background, no negative values.
    meta : ImageMeta
        Axes, spacing and unit to store (usually those of the segmented image).
    overwrite : bool, optional
        Replace an existing file. By default an existing file is an error.

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    ImageFileError
        If the file exists and ``overwrite`` is False, the labels are not integers, are
        negative, exceed the uint32 range, the array is empty or does not match ``meta.axes``.

    Notes
    -----
    The data is zlib-compressed: label images are mostly background and shrink many-fold.
    """
    path = _check_target(path, TIFF_SUFFIXES, overwrite=overwrite)
    labels = np.asarray(labels)
    if labels.dtype != bool and not np.issubdtype(labels.dtype, np.integer):
        raise ImageFileError(
            path,
            f"labels must have an integer data type, got {labels.dtype}; round or "
            "relabel the array first",
        )
    labels, axes = _check_array(path, labels, meta)
    low, high = (int(labels.min()), int(labels.max()))
    if low < 0:
        raise ImageFileError(path, f"labels must not be negative (minimum is {low})")
    for dtype in (np.uint8, np.uint16, np.uint32):
        if high <= np.iinfo(dtype).max:
            labels = labels.astype(dtype, copy=False)
            break
    else:
        raise ImageFileError(
            path,
            f"largest label {high} does not fit in uint32, the widest type OME-TIFF "
            "stores; relabel sequentially first",
        )
    _write_ome_tiff(path, labels, axes, meta, compression="zlib")
    return path


def write_table(path: str | Path, table: pd.DataFrame, *, overwrite: bool = False) -> Path:
    """Write a table as CSV, without the row index.

    Parameters
    ----------
    path : str or Path
        Target file, ending in ``.csv``. Missing parent folders are created.
    table : DataFrame
        The table; a table with columns and no rows is written as a header line.
    overwrite : bool, optional
        Replace an existing file. By default an existing file is an error.

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    ImageFileError
        If ``table`` is not a DataFrame, the suffix is not ``.csv``, or the file exists and
        ``overwrite`` is False.
    """
    path = _check_target(path, (".csv",), overwrite=overwrite)
    if not isinstance(table, pd.DataFrame):
        raise ImageFileError(path, f"expected a pandas DataFrame, got {type(table).__name__}")
    with _atomic_file(path) as tmp:
        table.to_csv(tmp, index=False)
    return path


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV table.

    Parameters
    ----------
    path : str or Path
        A ``.csv`` file with a header line.

    Returns
    -------
    DataFrame
        The table.

    Raises
    ------
    ImageFileError
        If the file is missing, empty, not CSV or cannot be parsed.
    """
    path = Path(path)
    if path.suffix.lower() != ".csv":
        raise ImageFileError(path, "tables are read from .csv files")
    if not path.is_file():
        raise ImageFileError(path, "no such file")
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise ImageFileError(path, "the file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ImageFileError(path, f"not a readable CSV table ({exc})") from exc


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file, or of every file in a folder (an OME-Zarr store) in sorted order.

    Recorded in provenance so that a result can be traced to the exact input bytes.
    """
    path = Path(path)
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(file.relative_to(path).as_posix().encode())
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def write_ome_zarr(
    path: str | Path, data: np.ndarray, meta: ImageMeta, *, overwrite: bool = False
) -> Path:
    """Write an image as a single-scale OME-Zarr (NGFF 0.4, Zarr format 2).

    Parameters
    ----------
    path : str or Path
        Target directory, ending in ``.zarr``. Missing parent folders are created.
    data : ndarray
        The image; finite values, at least one pixel, one dimension per letter of
        ``meta.axes``.
    meta : ImageMeta
        Axes, spacing and unit to store.
    overwrite : bool, optional
        Replace an existing Zarr store. A directory that is not a Zarr store is never
        replaced.

    Returns
    -------
    Path
        The written directory.

    Raises
    ------
    ImageFileError
        If the target exists and ``overwrite`` is False, is a directory that is not a Zarr
        store, or the array is empty, not finite or does not match ``meta.axes``.

    Notes
    -----
    Axes are written in canonical ``TCZYX`` order, as NGFF requires time, then channel, then
    space. Only level 0 is written: no pyramid.
    """
    import zarr

    path = _check_target(path, ZARR_SUFFIXES, overwrite=overwrite)
    data, axes = _check_array(path, data, meta)
    calibrated = meta.unit != "pixel" and all(a in meta.spacing for a in axes if a in SPATIAL_AXES)
    if calibrated and meta.unit not in _NGFF_UNIT_NAMES:
        raise ImageFileError(
            path,
            f"unit {meta.unit!r} cannot be stored in OME-Zarr; use one of "
            f"{', '.join(_NGFF_UNIT_NAMES)}",
        )
    ngff_axes: list[dict[str, str]] = []
    scale: list[float] = []
    for axis in axes:
        entry = {"name": axis.lower(), "type": {"T": "time", "C": "channel"}.get(axis, "space")}
        if axis in SPATIAL_AXES and calibrated:
            entry["unit"] = _NGFF_UNIT_NAMES[meta.unit]
            scale.append(float(meta.spacing[axis]))
        else:
            scale.append(1.0)
        ngff_axes.append(entry)
    multiscales = [
        {
            "version": "0.4",
            "name": path.stem,
            "axes": ngff_axes,
            "datasets": [
                {"path": "0", "coordinateTransformations": [{"type": "scale", "scale": scale}]}
            ],
        }
    ]
    with _atomic_dir(path) as tmp:
        try:
            group = zarr.open_group(str(tmp), mode="w", zarr_format=2)
            group.create_array("0", data=data, chunks=_zarr_chunks(data.shape, axes))
            group.attrs["multiscales"] = multiscales
        except Exception as exc:
            raise ImageFileError(path, f"writing OME-Zarr failed ({exc})") from exc
    return path


def _zarr_chunks(shape: tuple[int, ...], axes: str) -> tuple[int, ...]:
    # One chunk per YX plane (at most 1024 x 1024) reads planes and tiles without waste.
    return tuple(min(n, 1024) if a in "YX" else 1 for n, a in zip(shape, axes, strict=True))


def _check_target(path: str | Path, suffixes: tuple[str, ...], *, overwrite: bool) -> Path:
    path = Path(path).expanduser()
    if path.suffix.lower() not in suffixes:
        raise ImageFileError(
            path,
            f"cannot write a file named {path.suffix or 'without a suffix'!r} here; "
            f"the name must end in {' or '.join(suffixes)}",
        )
    if path.exists() or path.is_symlink():
        if not overwrite:
            raise ImageFileError(
                path, "file already exists; not overwriting it (pass overwrite=True to replace it)"
            )
        if path.is_dir() and not _is_zarr_store(path):
            raise ImageFileError(path, "is an existing directory; refusing to replace it")
    return path


def _is_zarr_store(path: Path) -> bool:
    return path.suffix.lower() in ZARR_SUFFIXES and any(
        (path / marker).exists() for marker in (".zgroup", ".zarray", "zarr.json")
    )


def _check_array(path: Path, data: np.ndarray, meta: ImageMeta) -> tuple[np.ndarray, str]:
    """Validate an array against its metadata and put it in canonical axis order."""
    if not isinstance(meta, ImageMeta):
        raise ImageFileError(path, f"meta must be an ImageMeta, got {type(meta).__name__}")
    data = np.asarray(data)
    if data.dtype.kind not in "biufc":
        raise ImageFileError(path, f"cannot write an array of type {data.dtype} as an image")
    if data.size == 0:
        raise ImageFileError(path, f"refusing to write an empty array (shape {data.shape})")
    if data.ndim != len(meta.axes):
        raise ImageFileError(
            path, f"array has {data.ndim} dimensions {data.shape} but axes are {meta.axes!r}"
        )
    if data.dtype.kind in "fc" and not np.isfinite(data).all():
        raise ImageFileError(
            path,
            "refusing to write an array holding NaN or infinite values; replace them "
            "first (e.g. numpy.nan_to_num)",
        )
    return _to_canonical(path, data, meta.axes)


def _ome_storable(path: Path, data: np.ndarray) -> np.ndarray:
    if data.dtype in _OME_DTYPES:
        return data
    if data.dtype == np.float16:
        return data.astype(np.float32)
    if data.dtype.kind in "iu":
        narrow = np.dtype(f"{data.dtype.kind}4")
        info = np.iinfo(narrow)
        if info.min <= data.min() and data.max() <= info.max:
            return data.astype(narrow)
    raise ImageFileError(
        path,
        f"OME-TIFF cannot store {data.dtype} values in this range; convert the array "
        "to float32 or a 32-bit integer type",
    )


def _write_ome_tiff(
    path: Path, data: np.ndarray, axes: str, meta: ImageMeta, *, compression: str | None
) -> None:
    import tifffile

    metadata: dict[str, Any] = {"axes": axes}
    if meta.unit != "pixel":
        if meta.unit not in MICROMETERS_PER_UNIT:
            raise ImageFileError(
                path,
                f"unit {meta.unit!r} cannot be stored in OME-TIFF; use one of "
                f"{', '.join(MICROMETERS_PER_UNIT)}",
            )
        for axis in SPATIAL_AXES:
            if axis in axes and axis in meta.spacing:
                metadata[f"PhysicalSize{axis}"] = float(meta.spacing[axis])
                metadata[f"PhysicalSize{axis}Unit"] = meta.unit
    with _atomic_file(path) as tmp:
        try:
            # minisblack: without it tifffile stores a leading or trailing axis of 3 or 4 as
            # RGB samples, which changes the axes on reading back.
            tifffile.imwrite(
                tmp,
                data,
                ome=True,
                photometric="minisblack",
                metadata=metadata,
                compression=compression,
            )
        except ImageFileError:
            raise
        except Exception as exc:
            raise ImageFileError(path, f"writing OME-TIFF failed ({exc})") from exc


@contextlib.contextmanager
def _atomic_file(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it onto ``path`` if the block succeeds."""
    with _os_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = _temporary_sibling(path)
        try:
            yield tmp
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def _atomic_dir(path: Path) -> Iterator[Path]:
    """Like :func:`_atomic_file` for a directory; the old one is deleted only after the swap."""
    with _os_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = _temporary_sibling(path)
        try:
            yield tmp
            old = None
            if path.is_dir():
                old = path.with_name(f"{tmp.name}.old")
                path.rename(old)
            elif path.exists() or path.is_symlink():
                path.unlink()
            try:
                tmp.rename(path)
            except OSError:
                if old is not None:
                    old.rename(path)  # put the user's store back
                raise
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)


def _temporary_sibling(path: Path) -> Path:
    # Only a name: the writer creates the file, so it gets the usual permissions (tempfile's
    # mkstemp/mkdtemp would make it private to the user, and os.replace keeps that).
    return path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")


@contextlib.contextmanager
def _os_errors(path: Path) -> Iterator[None]:
    """Report a failing file system call (no permission, disk full) as an ImageFileError."""
    try:
        yield
    except ImageFileError:
        raise
    except OSError as exc:
        raise ImageFileError(path, f"cannot write: {exc.strerror or exc}") from exc
