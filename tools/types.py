"""Annotations that mark a tool parameter or return value as a workspace artifact.

A tool is written against plain numpy arrays and pandas DataFrames. These aliases add only a
marker the registry reads: ``image: Image`` is an ``np.ndarray`` to the function and to type
checkers, and an artifact name (or file path) to a language model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal

import numpy as np
import pandas as pd

ArtifactKind = Literal["image", "labels", "table", "mesh", "plot"]

SPATIAL_AXES = "ZYX"


@dataclass(frozen=True)
class ArtifactRole:
    """Marker stored in ``Annotated`` metadata: which kind of artifact a value is."""

    kind: ArtifactKind


Image = Annotated[np.ndarray, ArtifactRole("image")]
"""An intensity image (2D ``YX``, 3D ``ZYX``, or with ``T``/``C`` axes)."""

Labels = Annotated[np.ndarray, ArtifactRole("labels")]
"""An integer instance-label image; 0 is background."""

Table = Annotated[pd.DataFrame, ArtifactRole("table")]
"""A table, usually one row per object."""


@dataclass(frozen=True)
class InputFileRole:
    """Marker for a parameter naming a file or folder the tool reads (e.g. a model folder)."""


InputPath = Annotated[str, InputFileRole()]
"""A file or folder the tool reads. Called directly it is any path; through the registry it is
resolved inside the workspace roots like an image path, and must exist."""


@dataclass(frozen=True)
class OutputFileRole:
    """Marker for a parameter naming a file the tool writes (a plot, a mesh)."""


OutputPath = Annotated[str, OutputFileRole()]
"""A file the tool writes. Called directly it is any path; through the registry a model gives
only a file name, and the file is made in the session folder (never elsewhere, never over an
existing file)."""


@dataclass(frozen=True, repr=False)
class PixelSize:
    """Physical size of one pixel or voxel along each spatial axis.

    Attributes
    ----------
    spacing : tuple of float
        Size along each spatial axis of the array, in array order (``(dz, dy, dx)`` or
        ``(dy, dx)``).
    unit : str
        Unit of ``spacing``, e.g. ``"µm"``; ``"pixel"`` when the size is unknown.
    time_step : float or None
        Time between frames of the movie the pixels belong to, in ``time_unit``; None when
        unknown (or not a movie).
    time_unit : str or None
        Unit of ``time_step``, e.g. ``"min"``.
    """

    spacing: tuple[float, ...]
    unit: str = "pixel"
    time_step: float | None = None
    time_unit: str | None = None

    def __post_init__(self) -> None:
        if not self.spacing or any(not np.isfinite(s) or s <= 0 for s in self.spacing):
            raise ValueError(f"pixel size must be positive and finite, got {self.spacing}")
        if self.time_step is not None and not (np.isfinite(self.time_step)
                                               and self.time_step > 0):
            raise ValueError(f"time step must be positive and finite, got {self.time_step}")

    def __repr__(self) -> str:
        # Written into exported scripts: the time fields only when known.
        text = f"PixelSize(spacing={self.spacing!r}, unit={self.unit!r}"
        if self.time_step is not None:
            text += f", time_step={self.time_step!r}, time_unit={self.time_unit!r}"
        return text + ")"

    @property
    def calibrated(self) -> bool:
        """Whether the size is in a physical unit rather than pixels."""
        return self.unit != "pixel"

    @classmethod
    def unknown(cls, ndim: int) -> PixelSize:
        """One pixel per pixel, for an image without calibration."""
        return cls(spacing=(1.0,) * ndim, unit="pixel")


@dataclass
class ImageMeta:
    """What a file tells about an array besides its values.

    Attributes
    ----------
    axes : str
        One letter per array dimension, from ``"TCZYX"`` (e.g. ``"ZYX"``, ``"CYX"``).
    spacing : dict of str to float
        Physical size per spatial axis present in ``axes`` (keys among ``"Z"``, ``"Y"``,
        ``"X"``). Empty when unknown.
    unit : str
        Unit of ``spacing``; ``"pixel"`` when the size is unknown.
    source : str
        The file the array came from, or a description such as ``"synthetic"``.
    extra : dict
        Anything else worth keeping (channel names, time interval).
    """

    axes: str
    spacing: dict[str, float] = field(default_factory=dict)
    unit: str = "pixel"
    source: str = ""
    extra: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(set(self.axes)) != len(self.axes) or set(self.axes) - set("TCZYX"):
            raise ValueError(f"axes must be distinct letters from 'TCZYX', got {self.axes!r}")

    def pixel_size(self) -> PixelSize:
        """Pixel size along the spatial axes present in ``axes``, in array order."""
        spatial = [a for a in self.axes if a in SPATIAL_AXES]
        if not spatial:
            raise ValueError(f"axes {self.axes!r} have no spatial axis")
        step, tunit = self.frame_interval() or (None, None)
        if all(a in self.spacing for a in spatial) and self.unit != "pixel":
            return PixelSize(tuple(float(self.spacing[a]) for a in spatial), self.unit,
                             time_step=step, time_unit=tunit)
        return PixelSize((1.0,) * len(spatial), "pixel", time_step=step, time_unit=tunit)

    def frame_interval(self) -> tuple[float, str] | None:
        """Time between frames and its unit, for an image with a ``T`` axis whose step is known."""
        step = self.extra.get("time_interval")
        if "T" not in self.axes or step is None:
            return None
        return float(step), str(self.extra.get("time_unit") or "s")  # type: ignore[arg-type]


def default_axes(ndim: int) -> str:
    """Axes assumed for an array that carries no axis metadata."""
    if ndim == 2:
        return "YX"
    if ndim == 3:
        return "ZYX"
    if ndim == 4:
        return "TZYX"
    if ndim == 5:
        return "TCZYX"
    raise ValueError(f"cannot guess axes for an array with {ndim} dimensions")
