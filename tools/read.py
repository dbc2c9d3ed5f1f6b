"""``open_image``: the registered tool a plan uses to read a file with what the user stated.

``movie = open_image(path="movie.tif", axes="TYX", time_step=5, time_unit="min")`` records the
statement in the workspace (:meth:`~tools.workspace.Workspace.state`), so every later use of
the file reads it that way, and binds the image read with it. The deciding itself is done once,
by :func:`tools.io.read_image` and :func:`tools.calibration.decide_reading`.
"""

from __future__ import annotations

import logging

from tools.calibration import reading_note
from tools.registry import tool
from tools.types import Image, InputPath

__all__ = ["open_image"]

log = logging.getLogger(__name__)


@tool(category="io", opens="path")
def open_image(
    path: InputPath,
    axes: str | None = None,
    pixel_size: float | list[float] | None = None,
    unit: str | None = None,
    z_step: float | None = None,
    time_step: float | None = None,
    time_unit: str | None = None,
    channel_names: list[str] | None = None,
) -> Image:
    """Read an image file with what the user said about it: axes, pixel size, time step.

    Use it when the request says what the file is ("a time-lapse", "a z-stack with 2 µm
    steps", "pixel size 0.2 µm", "frames every 5 min", "channel 1 is DAPI"). What is stated
    wins over the file's own metadata, and is used by every later step on this image. Leave
    out what the request does not say.

    Parameters
    ----------
    path : str
        The image file.
    axes : str, optional
        One letter per dimension in the file's order: "TYX" for a time-lapse (movie), "ZYX"
        for a z-stack, "CYX" for channels, "TZYX", "CZYX" ...
    pixel_size : float or list of float, optional
        Size of one pixel in ``unit``: one number for Y and X, or [y, x], or [z, y, x].
    unit : str, optional
        Unit of ``pixel_size`` and ``z_step``: "nm", "µm" (or "um", "micron") or "mm".
        µm when a size is given without one.
    z_step : float, optional
        Distance between z planes, in ``unit``.
    time_step : float, optional
        Time between frames, in ``time_unit``.
    time_unit : str, optional
        Unit of ``time_step``: "ms", "s", "min" or "h". Seconds when not given.
    channel_names : list of str, optional
        One name per channel, in order, e.g. ["DAPI", "GFP"].

    Returns
    -------
    Image
        The image, axes in ``TCZYX`` order.

    Raises
    ------
    StatedMetadataError
        For axes that do not match the file's dimensions, a pixel size or step that is not
        positive, an unknown unit, or as many channel names as the image has no channels.
    ImageFileError
        When the file cannot be read.

    Notes
    -----
    Through the registry (a plan), the statement is recorded in the workspace
    (:meth:`~tools.workspace.Workspace.state`) and the file's artifact is read again with it;
    the stored image carries the axes, pixel size and time step, and its provenance says
    where each came from. Called directly, the array is returned and the account of the
    reading is logged; :func:`tools.io.read_image` with the same keywords returns the
    metadata too.

    Examples
    --------
    >>> import numpy as np, tifffile, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "movie.tif"
    >>> tifffile.imwrite(path, np.zeros((6, 8, 8), np.uint8))
    >>> open_image(path=str(path), axes="TYX", time_step=5, time_unit="min").shape
    (6, 8, 8)
    """
    from tools.io import read_image

    data, meta = read_image(path, axes=axes, pixel_size=pixel_size, unit=unit, z_step=z_step,
                            time_step=time_step, time_unit=time_unit,
                            channel_names=channel_names)
    log.info("%s: %s", path, reading_note(meta))
    return data


