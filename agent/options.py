"""Command-line options that state what the images are: ``--axes TYX --pixel-size 0.2`` ...

Shared by ``bia run``, ``bia chat``, ``bia batch`` and ``bia serve-mcp``; each turns the options
into keyword arguments of :meth:`tools.workspace.Workspace.state` (one file) or
:meth:`~tools.workspace.Workspace.state_default` (every image the session reads).
"""

from __future__ import annotations

import argparse
from typing import Any

from tools.calibration import Statement

__all__ = ["add_statement_arguments", "stated_from_args"]


def add_statement_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--axes``, ``--pixel-size``, ``--unit``, ``--z-step``, ``--time-step``, ``--time-unit``
    and ``--channel-names`` to ``parser``.

    Examples
    --------
    >>> parser = argparse.ArgumentParser()
    >>> add_statement_arguments(parser)
    >>> stated_from_args(parser.parse_args(["--axes", "TYX", "--pixel-size", "0.2"]))
    {'axes': 'TYX', 'pixel_size': 0.2}
    """
    group = parser.add_argument_group(
        "what the images are (wins over the files' metadata; shown with the answer)")
    group.add_argument("--axes", default=None, metavar="LETTERS",
                       help="one letter per dimension in the file's order: TYX (time-lapse), "
                            "ZYX (z-stack), CYX (channels), TZYX ...")
    group.add_argument("--pixel-size", type=float, nargs="+", default=None, metavar="SIZE",
                       help="pixel size in --unit: one number (y and x), or Y X, or Z Y X")
    group.add_argument("--unit", default=None,
                       help="unit of --pixel-size and --z-step: nm, µm (um, micron) or mm "
                            "(default: µm)")
    group.add_argument("--z-step", type=float, default=None, metavar="STEP",
                       help="distance between z planes, in --unit")
    group.add_argument("--time-step", type=float, default=None, metavar="STEP",
                       help="time between frames, in --time-unit")
    group.add_argument("--time-unit", default=None,
                       help="unit of --time-step: ms, s, min or h (default: s)")
    group.add_argument("--channel-names", default=None, metavar="NAMES",
                       help="channel names in order, comma-separated: DAPI,GFP")


def stated_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The statement the options make, checked, as keyword arguments (empty if none given).

    Raises
    ------
    StatedMetadataError
        For a value that is not positive, an unknown unit, axes with unknown letters.
    """
    pixel_size = getattr(args, "pixel_size", None)
    if isinstance(pixel_size, list) and len(pixel_size) == 1:
        pixel_size = pixel_size[0]
    statement = Statement.make(
        axes=getattr(args, "axes", None),
        pixel_size=pixel_size,
        unit=getattr(args, "unit", None),
        z_step=getattr(args, "z_step", None),
        time_step=getattr(args, "time_step", None),
        time_unit=getattr(args, "time_unit", None),
        channel_names=getattr(args, "channel_names", None),
    )
    return statement.as_arguments()
