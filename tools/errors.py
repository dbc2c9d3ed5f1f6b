"""Exceptions raised by bia tools.

Every error a user or a model can cause derives from :class:`BiaError`, so the agent can turn
it into a message instead of a traceback. The message names the problem and, where it can, what
to do about it.
"""

from __future__ import annotations


class BiaError(Exception):
    """Base class of every error a caller can act on."""


class InputError(BiaError, ValueError):
    """An argument or an array has the wrong value, shape, type or content."""


class ImageFileError(BiaError, OSError):
    """A file could not be read or written: corrupt, empty, truncated or unsupported."""

    def __init__(self, path: object, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class PathNotAllowedError(BiaError, PermissionError):
    """A path points outside the workspace roots."""


class ArtifactNotFoundError(BiaError, KeyError):
    """No artifact or file of that name exists in the workspace.

    ``ref`` is the name or path that was asked for, when known.
    """

    def __init__(self, message: str, ref: str | None = None) -> None:
        super().__init__(message)
        self.ref = ref

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain.
        return str(self.args[0]) if self.args else ""


class ToolCallError(BiaError, ValueError):
    """A tool was called with arguments that do not match its signature."""


class StatedMetadataError(InputError):
    """What a user stated about a file (axes, pixel size, units, channels) cannot be applied."""


class CalibrationMissingError(InputError):
    """A physical size was asked for, and no pixel size is known: none in the file, none stated."""
