"""Named artifacts (images, labels, tables) with axes, pixel size and provenance.

The workspace is what a tool call sees through the registry: names map to arrays or tables, file
paths are resolved inside the workspace roots only, and every result is stored under a new name
with the tool, arguments and inputs that made it. Outputs are written to a fresh session folder,
so nothing a user had is overwritten.

What a user states about a file (axes, pixel size, time step, channel names) is kept per file
by :meth:`Workspace.state` and applied on every later read of it; the artifact's provenance
records the source of each value (``provenance["reading"]``).
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from tools.calibration import Statement
from tools.errors import ArtifactNotFoundError, InputError, PathNotAllowedError
from tools.types import ArtifactKind, ImageMeta, default_axes

if TYPE_CHECKING:
    from tools.registry import ToolResult

ARTIFACT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
OUTPUT_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\- ]{0,127}$")
DEFAULT_MAX_PIXELS = int(os.environ.get("BIA_MAX_PIXELS", 2**27))
"""Largest input (in pixels or voxels) a tool accepts before asking for tiling."""

TRACKED_PACKAGES = (
    "numpy", "scipy", "scikit-image", "pandas", "tifffile", "stardist", "csbdeep",
    "tensorflow-cpu", "tensorflow", "pyclesperanto-prototype", "laptrack", "bia-agent",
)


def package_versions(names: Sequence[str] = TRACKED_PACKAGES) -> dict[str, str]:
    """Installed versions of the packages that decide a result (absent ones left out)."""
    versions = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


@dataclass
class Artifact:
    """One named thing in the workspace.

    Attributes
    ----------
    name : str
        Unique name in its workspace.
    kind : {"image", "labels", "table", "mesh", "plot"}
        What the data is.
    data : object
        ``np.ndarray`` for images and labels, ``pd.DataFrame`` for tables.
    meta : ImageMeta or None
        Axes and pixel size of images and labels.
    provenance : dict
        Tool, arguments and inputs that made it, or the file it was read from.
    path : Path or None
        Where it was last saved or read from.
    """

    name: str
    kind: ArtifactKind
    data: Any
    meta: ImageMeta | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None


def _check_data(kind: str, data: Any, name: str) -> None:
    if kind in ("image", "labels"):
        if not isinstance(data, np.ndarray):
            raise InputError(f"{kind} {name!r} must be a numpy array, got {type(data).__name__}")
        if data.size == 0:
            raise InputError(f"{kind} {name!r} is empty (shape {data.shape})")
        if kind == "labels" and not np.issubdtype(data.dtype, np.integer):
            raise InputError(f"labels {name!r} must have an integer dtype, got {data.dtype}")
    elif kind == "table" and not isinstance(data, pd.DataFrame):
        raise InputError(f"table {name!r} must be a pandas DataFrame, got {type(data).__name__}")


class Workspace:
    """Artifacts by name, file access confined to roots, outputs in a new session folder.

    Parameters
    ----------
    roots : sequence of path-like, optional
        Folders whose files may be read. The current folder by default.
    output_root : path-like, optional
        Folder under which this session's output folder is made (``./bia_output`` by default).
        The session folder is readable too.
    max_pixels : int, optional
        Largest input a tool accepts; larger ones are refused with a pointer to tiling.
    """

    def __init__(
        self,
        roots: Sequence[str | os.PathLike[str]] | None = None,
        *,
        output_root: str | os.PathLike[str] | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> None:
        raw_roots = list(roots) if roots else [Path.cwd()]
        self.roots = [Path(r).resolve() for r in raw_roots]
        for root in self.roots:
            if not root.is_dir():
                raise InputError(f"workspace root {str(root)!r} is not a folder")
        self.output_root = Path(output_root or Path.cwd() / "bia_output").resolve()
        self.max_pixels = int(max_pixels)
        self.artifacts: dict[str, Artifact] = {}
        self.calls: list[ToolResult] = []
        self.files: list[Path] = []
        self._session_dir: Path | None = None
        self._by_path: dict[Path, str] = {}
        self._stated: dict[Path, Statement] = {}
        self._default_statement = Statement()
        self._unstated: dict[str, tuple[np.ndarray, ImageMeta]] = {}

    # -- paths ----------------------------------------------------------------------------

    @property
    def session_dir(self) -> Path:
        """This session's output folder, made on first use; never an existing folder."""
        if self._session_dir is None:
            stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
            self.output_root.mkdir(parents=True, exist_ok=True)
            for i in range(1000):
                candidate = self.output_root / (f"session-{stamp}" + (f"-{i}" if i else ""))
                try:
                    candidate.mkdir()
                except FileExistsError:
                    continue
                self._session_dir = candidate
                break
            else:  # pragma: no cover - a thousand sessions in one second
                raise InputError(f"cannot make a new session folder in {self.output_root}")
        return self._session_dir

    def _allowed_roots(self) -> list[Path]:
        return [*self.roots, *([self._session_dir] if self._session_dir else [])]

    def resolve_path(self, path: str | os.PathLike[str]) -> Path:
        """Resolve a user's or model's path inside the workspace roots.

        Parameters
        ----------
        path : str or path-like
            Relative to a root, or absolute inside one.

        Returns
        -------
        Path
            The resolved path (symbolic links followed). For a relative path the first root
            where it exists wins; if it exists nowhere, the first root's candidate is returned.

        Raises
        ------
        PathNotAllowedError
            When the path is empty, has a NUL byte, or resolves outside every root (``..``,
            an absolute path elsewhere, or a symbolic link that leads out).
        """
        text = os.fspath(path) if isinstance(path, os.PathLike) else path
        if not isinstance(text, str) or not text.strip():
            raise PathNotAllowedError("an empty path was given; name a file inside the workspace")
        if "\x00" in text:
            raise PathNotAllowedError(f"path {text!r} contains a NUL byte")
        roots = self._allowed_roots()
        given = Path(text)
        candidates = [given] if given.is_absolute() else [root / given for root in roots]
        resolved: list[Path] = []
        for candidate in candidates:
            try:
                real = candidate.resolve()
            except (OSError, RuntimeError) as exc:  # symlink loops, names too long
                raise PathNotAllowedError(f"path {text!r} cannot be resolved: {exc}") from None
            if any(real == root or real.is_relative_to(root) for root in roots):
                resolved.append(real)
        if not resolved:
            shown = ", ".join(str(r) for r in self.roots)
            raise PathNotAllowedError(
                f"path {text!r} is outside the workspace folders ({shown}); copy the file into "
                "one of them or add its folder as a root (bia --root FOLDER)"
            )
        return next((r for r in resolved if r.exists()), resolved[0])

    def input_file(self, path: str) -> Path:
        """An existing file or folder inside the workspace roots, for a tool to read.

        Raises
        ------
        PathNotAllowedError
            When ``path`` leads outside the roots.
        ArtifactNotFoundError
            When nothing exists there.
        """
        resolved = self.resolve_path(path)
        if not resolved.exists():
            raise ArtifactNotFoundError(
                f"{path!r} does not exist in {', '.join(str(r) for r in self.roots)}",
                ref=str(path),
            )
        return resolved

    def output_file(self, name: str) -> Path:
        """Where a tool may write the file ``name``: inside the session folder, new.

        Parameters
        ----------
        name : str
            A plain file name such as ``"bland_altman.png"``; folders are not allowed.

        Raises
        ------
        PathNotAllowedError
            When ``name`` has a folder part, ``..``, or characters other than letters, digits,
            spaces, ``_``, ``.`` and ``-``.
        InputError
            When the session folder already has a file of that name.
        """
        if not isinstance(name, str) or not OUTPUT_FILE_NAME.match(name) or ".." in name:
            raise PathNotAllowedError(
                f"output file name {name!r} is not allowed: give a plain file name such as "
                "'plot.png' (letters, digits, '_', '.', '-'); it is written to the session folder"
            )
        path = self.session_dir / name
        if path.exists():
            raise InputError(f"{name!r} already exists in the session folder; choose another name")
        self.files.append(path)
        return path

    # -- artifacts ------------------------------------------------------------------------

    def __contains__(self, name: object) -> bool:
        return name in self.artifacts

    def __iter__(self) -> Iterator[Artifact]:
        return iter(self.artifacts.values())

    def __len__(self) -> int:
        return len(self.artifacts)

    def unique_name(self, base: str) -> str:
        """``base`` made valid, or with ``_2``, ``_3`` ... if the name is taken."""
        clean = re.sub(r"[^A-Za-z0-9_.\-]+", "_", base).strip("_.-")[:56] or "artifact"
        if not clean[0].isalnum():
            clean = f"a{clean}"
        name, i = clean, 2
        while name in self.artifacts:
            name, i = f"{clean}_{i}", i + 1
        return name

    def add(
        self,
        name: str,
        data: Any,
        *,
        kind: ArtifactKind,
        meta: ImageMeta | None = None,
        provenance: dict[str, Any] | None = None,
        path: Path | None = None,
    ) -> Artifact:
        """Add an artifact under exactly ``name`` (an error if the name is taken or invalid)."""
        if not ARTIFACT_NAME.match(name):
            raise InputError(
                f"artifact name {name!r} is not allowed: use letters, digits, '_', '.', '-'"
            )
        if name in self.artifacts:
            raise InputError(f"an artifact named {name!r} already exists")
        _check_data(kind, data, name)
        if kind in ("image", "labels") and meta is None:
            meta = ImageMeta(axes=default_axes(data.ndim), source="memory")
        if meta is not None and len(meta.axes) != data.ndim:
            raise InputError(
                f"{kind} {name!r} has {data.ndim} dimensions but axes {meta.axes!r}"
            )
        artifact = Artifact(name, kind, data, meta, dict(provenance or {}), path)
        self.artifacts[name] = artifact
        return artifact

    def store(
        self,
        base: str,
        data: Any,
        *,
        kind: ArtifactKind,
        like: Artifact | None = None,
        provenance: dict[str, Any] | None = None,
    ) -> Artifact:
        """Store a tool's result under a new name derived from ``base``.

        Axes and pixel size are copied from ``like`` (the tool's first image input) when the
        result has as many dimensions, so calibration follows the data through a pipeline.
        """
        meta = None
        if kind in ("image", "labels") and isinstance(data, np.ndarray):
            if like is not None and like.meta is not None and data.ndim == like.data.ndim:
                meta = replace(like.meta, source=f"tool:{(provenance or {}).get('tool', '')}")
            else:
                meta = ImageMeta(axes=default_axes(data.ndim), source="tool")
        record = {**(provenance or {}), "versions": package_versions()}
        return self.add(self.unique_name(base), data, kind=kind, meta=meta, provenance=record)

    def get(self, ref: str) -> Artifact:
        """The artifact named ``ref``, or the file at path ``ref`` read into the workspace.

        A file is read once; asking for the same path again returns the same artifact.
        """
        if not isinstance(ref, str):
            raise InputError(f"an artifact name or path must be text, got {type(ref).__name__}")
        if ref in self.artifacts:
            return self.artifacts[ref]
        try:
            path = self.resolve_path(ref)
        except PathNotAllowedError:
            # A bare word that is neither an artifact nor a file is "not found"; anything that
            # looks like a path, or names a link that leads out, is refused as such.
            looks_like_path = "/" in ref or "\\" in ref or ref.startswith(("~", "."))
            if looks_like_path or any(os.path.lexists(r / ref) for r in self.roots):
                raise
            path = None
        if path is None or not path.exists():
            known = ", ".join(self.artifacts) or "none yet"
            raise ArtifactNotFoundError(
                f"No artifact or file named {ref!r}. Artifacts: {known}. Files are looked up "
                f"in {', '.join(str(r) for r in self.roots)}.",
                ref=ref,
            )
        if path in self._by_path:
            return self.artifacts[self._by_path[path]]
        artifact = self._read(path)
        self._by_path[path] = artifact.name
        return artifact

    def _read(self, path: Path) -> Artifact:
        from tools import io

        stem = path.name.split(".")[0] if not path.is_dir() else path.stem.split(".")[0]
        provenance = {"file": str(path), "sha256": io.file_sha256(path)}
        if path.suffix.lower() == ".csv":
            table = io.read_table(path)
            return self.add(self.unique_name(stem), table, kind="table", provenance=provenance,
                            path=path)
        statement = self._default_statement.merged(self._stated.get(path, Statement()))
        data, meta, reading = self._read_image(path, statement)
        kind: ArtifactKind = "labels" if _looks_like_labels(path, data) else "image"
        return self.add(self.unique_name(stem), data, kind=kind, meta=meta,
                        provenance={**provenance, **reading}, path=path)

    @staticmethod
    def _read_image(path: Path, statement: Statement | None
                    ) -> tuple[np.ndarray, ImageMeta, dict[str, Any]]:
        """Read an image with the statement; the provenance entries that say how."""
        from tools import io

        stated = statement.as_arguments() if statement is not None else {}
        data, meta = io.read_image(path, **stated)
        record: dict[str, Any] = {"reading": meta.extra.get("reading", {})}
        if stated:
            record["stated"] = stated
        return data, meta, record

    def state(
        self,
        path_or_name: str | os.PathLike[str],
        *,
        axes: str | None = None,
        pixel_size: float | Sequence[float] | dict[str, float] | None = None,
        unit: str | None = None,
        z_step: float | None = None,
        time_step: float | None = None,
        time_unit: str | None = None,
        channel_names: Sequence[str] | None = None,
    ) -> Artifact:
        """Record what the user stated about a file; it applies on every later read of it.

        The user wins over the file's metadata; the artifact's provenance (``reading``) says
        where each value came from and where the file disagreed. A file read before is read
        again with the statement, under the same artifact name. A second statement for the
        same file adds to the first (a value stated again replaces the earlier one).

        Parameters
        ----------
        path_or_name : str or path-like
            A file inside the workspace roots, or the name of an artifact (a file read
            earlier, or an array added in code, whose metadata is then changed in place).
        axes : str, optional
            One letter from ``TCZYX`` per dimension, in the file's order: ``"TYX"`` for a
            time-lapse, ``"ZYX"`` for a z-stack.
        pixel_size : float or sequence of float or dict, optional
            Pixel size in ``unit``: one number (Y and X), ``(y, x)``, ``(z, y, x)``.
        unit : str, optional
            ``nm``, ``µm`` (``um``, ``micron``) or ``mm``; µm by default.
        z_step : float, optional
            Distance between z planes, in ``unit``.
        time_step : float, optional
            Time between frames, in ``time_unit``.
        time_unit : str, optional
            ``ms``, ``s`` (default), ``min`` or ``h``.
        channel_names : sequence of str, optional
            One name per channel.

        Returns
        -------
        Artifact
            The file's artifact, read with everything stated for it so far.

        Raises
        ------
        StatedMetadataError
            When a value is invalid or does not fit the image (axes of another length than
            its dimensions, a pixel size that is not positive, an unknown unit, a time step
            for an image without a time axis ...). Nothing is recorded then.
        PathNotAllowedError, ArtifactNotFoundError
            When the file is outside the roots or does not exist.

        Examples
        --------
        >>> import numpy as np, tifffile, tempfile, pathlib
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> tifffile.imwrite(folder / "movie.tif", np.zeros((6, 8, 8), np.uint8))
        >>> ws = Workspace([folder], output_root=folder / "out")
        >>> ws.state("movie.tif", axes="TYX", time_step=5, time_unit="min").meta.axes
        'TYX'
        >>> ws.get("movie.tif").meta.extra["time_interval"]
        5.0
        """
        statement = Statement.make(axes=axes, pixel_size=pixel_size, unit=unit, z_step=z_step,
                                   time_step=time_step, time_unit=time_unit,
                                   channel_names=channel_names)
        ref = os.fspath(path_or_name)
        artifact = self.artifacts.get(ref)
        if artifact is not None and artifact.path is None and "file" not in artifact.provenance:
            return self._state_in_memory(artifact, statement)
        path = (Path(artifact.provenance["file"]) if artifact is not None
                and "file" in artifact.provenance else self.input_file(ref))
        earlier = self._stated.get(path, Statement())
        merged = earlier.merged(statement)
        if path.suffix.lower() == ".csv":
            raise InputError(f"{path.name} is a table; axes and pixel size apply to images")
        # Read first: a statement that does not fit the file raises and is not recorded.
        data, meta, reading = self._read_image(path, self._default_statement.merged(merged))
        _note_restated(reading, earlier, statement)
        self._stated[path] = merged
        name = self._by_path.get(path)
        if name is None:
            return self.get(str(path))
        existing = self.artifacts[name]
        existing.data, existing.meta = data, meta
        existing.provenance.pop("stated", None)
        existing.provenance.update(reading)
        return existing

    def state_default(
        self,
        *,
        axes: str | None = None,
        pixel_size: float | Sequence[float] | dict[str, float] | None = None,
        unit: str | None = None,
        z_step: float | None = None,
        time_step: float | None = None,
        time_unit: str | None = None,
        channel_names: Sequence[str] | None = None,
    ) -> None:
        """State metadata for every image file this workspace reads from now on.

        This is what the command-line options (``--axes TYX --pixel-size 0.2``) do: they are
        said once for the session's images. A file's own statement (:meth:`state`) adds to
        it and wins where both give a value. Values are checked now; whether they fit a file
        (as many axes as it has dimensions) is checked when it is read.

        Parameters
        ----------
        axes, pixel_size, unit, z_step, time_step, time_unit, channel_names
            As for :meth:`state`.

        Raises
        ------
        StatedMetadataError
            For an invalid value (not positive, unknown unit, axes with unknown letters).

        Examples
        --------
        >>> import tempfile
        >>> ws = Workspace([tempfile.mkdtemp()])
        >>> ws.state_default(pixel_size=0.2, unit="um")
        >>> ws.stated_default()
        {'pixel_size': 0.2, 'unit': 'µm'}
        """
        statement = Statement.make(axes=axes, pixel_size=pixel_size, unit=unit, z_step=z_step,
                                   time_step=time_step, time_unit=time_unit,
                                   channel_names=channel_names)
        self._default_statement = self._default_statement.merged(statement)

    def stated_default(self) -> dict[str, Any]:
        """What :meth:`state_default` holds, as keyword arguments (empty when nothing)."""
        return self._default_statement.as_arguments()

    def _state_in_memory(self, artifact: Artifact, statement: Statement) -> Artifact:
        from tools import io

        if artifact.kind not in ("image", "labels"):
            raise InputError(f"{artifact.name!r} is a {artifact.kind}; axes and pixel size "
                             "apply to images")
        before = Statement.make(**artifact.provenance.get("stated", {}))
        merged = before.merged(statement)
        # Restate from the array as it was added, never on top of an earlier statement.
        original = self._unstated.get(artifact.name, (artifact.data, artifact.meta))
        data, meta = io.apply_statement(original[0], original[1], merged, name=artifact.name)
        artifact.data, artifact.meta = data, meta
        self._unstated[artifact.name] = original
        artifact.provenance["stated"] = merged.as_arguments()
        record = {"reading": meta.extra.get("reading", {})}
        _note_restated(record, before, statement)
        artifact.provenance["reading"] = record["reading"]
        return artifact

    def stated(self, path_or_name: str | os.PathLike[str]) -> dict[str, Any]:
        """What was stated for a file or artifact so far, as keyword arguments (may be empty)."""
        ref = os.fspath(path_or_name)
        artifact = self.artifacts.get(ref)
        if artifact is not None and "stated" in artifact.provenance:
            return dict(artifact.provenance["stated"])
        try:
            path = self.resolve_path(ref)
        except PathNotAllowedError:
            return {}
        statement = self._stated.get(path)
        return statement.as_arguments() if statement is not None else {}

    def reading_notes(self, *, notable: bool = False) -> dict[str, str]:
        """How each image read from a file got its axes and pixel size: name -> one line.

        Parameters
        ----------
        notable : bool
            Only the readings an answer should mention: something stated, guessed or
            assumed, or a file that disagreed with what was stated.

        Examples
        --------
        >>> import numpy as np, tifffile, tempfile, pathlib
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> tifffile.imwrite(folder / "a.tif", np.zeros((8, 8), np.uint8))
        >>> ws = Workspace([folder], output_root=folder / "out")
        >>> _ = ws.get("a.tif")
        >>> ws.reading_notes(notable=True)
        {}
        >>> _ = ws.state("a.tif", pixel_size=0.2, unit="µm")
        >>> ws.reading_notes(notable=True)
        {'a': 'axes YX; pixel size 0.2 µm (you said so; the file had none)'}
        """
        notes = {}
        for artifact in self.artifacts.values():
            reading = artifact.provenance.get("reading", {})
            if not reading.get("note"):
                continue
            if notable and not _notable(reading):
                continue
            notes[artifact.name] = str(reading["note"])
        return notes

    def reading_note(self, name: str) -> str:
        """How an artifact read from a file got its axes and pixel size, in one line."""
        artifact = self.artifacts[name]
        return str(artifact.provenance.get("reading", {}).get("note", ""))

    def check_kind(self, artifact: Artifact, expected: str, *, parameter: str) -> None:
        """Refuse an artifact of the wrong kind with a message that says what to do."""
        if expected == artifact.kind:
            return
        if expected == "image" and artifact.kind == "labels":
            return  # label images are images too (e.g. to smooth or threshold them)
        if (
            expected == "labels"
            and artifact.kind == "image"
            and np.issubdtype(artifact.data.dtype, np.integer)
        ):
            return
        hint = {
            "labels": "segment it first (a 'segment' tool) to get a label image",
            "image": "pass an image or label image",
            "table": "measure objects first (a 'measure' tool) to get a table",
        }.get(expected, "")
        raise InputError(
            f"parameter {parameter!r} needs {expected}, but {artifact.name!r} is "
            f"{artifact.kind}"
            + (f" of dtype {artifact.data.dtype}" if isinstance(artifact.data, np.ndarray) else "")
            + (f"; {hint}" if hint else "")
        )

    def check_budget(self, artifact: Artifact) -> None:
        """Refuse arrays larger than ``max_pixels`` before a tool allocates its copies."""
        data = artifact.data
        if isinstance(data, np.ndarray) and data.size > self.max_pixels:
            raise InputError(
                f"{artifact.name!r} has {data.size:,} pixels, above the budget of "
                f"{self.max_pixels:,}; process it in tiles with the tiled tools "
                "(segment_tiled, filter_tiled), or raise the budget (BIA_MAX_PIXELS) if the "
                "machine has the memory"
            )

    def describe(self, name: str) -> str:
        """A one-paragraph description of an artifact for a model or a log: no whole arrays."""
        artifact = self.artifacts[name]
        data = artifact.data
        if artifact.kind == "table":
            from tools.registry import summarize_value

            return summarize_value(data)
        if isinstance(data, np.ndarray):
            shape = "x".join(str(s) for s in data.shape)
            text = f"{artifact.kind} {shape} {data.dtype}"
            if artifact.meta is not None:
                px = artifact.meta.pixel_size()
                text += f", axes {artifact.meta.axes}"
                if px.calibrated:
                    text += ", pixel size " + "x".join(f"{s:g}" for s in px.spacing) + f" {px.unit}"
                interval = artifact.meta.frame_interval()
                if interval is not None:
                    text += f", time step {interval[0]:g} {interval[1]}"
            if artifact.kind == "labels":
                n = int(np.unique(data[data != 0]).size)
                text += f", {n} objects"
            else:
                finite = data[np.isfinite(data)] if data.dtype.kind == "f" else data
                if finite.size:
                    text += f", values {finite.min():.4g}..{finite.max():.4g}"
            return text
        return f"{artifact.kind} {type(data).__name__}"

    def log_call(self, result: ToolResult) -> None:
        """Remember an executed call, for the session log and script export."""
        self.calls.append(result)

    # -- saving ---------------------------------------------------------------------------

    def save(self, name: str, *, folder: Path | None = None) -> Path:
        """Write an artifact into the session folder (or ``folder``) and return the path.

        Images and labels become OME-TIFF with their pixel size, tables CSV. Existing files are
        never overwritten.
        """
        from tools import io

        artifact = self.get(name)
        target_dir = folder or self.session_dir
        if artifact.kind == "table":
            path = target_dir / f"{artifact.name}.csv"
            io.write_table(path, artifact.data)
        elif artifact.kind == "labels":
            path = target_dir / f"{artifact.name}.ome.tif"
            io.write_labels(path, artifact.data, artifact.meta)
        elif artifact.kind == "image":
            path = target_dir / f"{artifact.name}.ome.tif"
            io.write_image(path, artifact.data, artifact.meta)
        else:
            raise InputError(f"saving {artifact.kind} artifacts is not supported")
        artifact.path = path
        return path

    def provenance(self) -> dict[str, Any]:
        """Everything needed to trace each artifact back to files, tools and versions."""
        return {
            "versions": package_versions(),
            "artifacts": {
                a.name: {"kind": a.kind, "provenance": a.provenance,
                         "path": str(a.path) if a.path else None}
                for a in self.artifacts.values()
            },
            "calls": [
                {"tool": c.tool, "arguments": c.arguments, "outputs": c.outputs,
                 "seconds": round(c.seconds, 4)}
                for c in self.calls
            ],
        }


def _notable(reading: dict[str, Any]) -> bool:
    """Whether a reading has something an answer should say: a statement, a guess, a clash."""
    sources = [reading.get("axes", {}).get("source")]
    sources += list(reading.get("pixel_size", {}).get("sources", {}).values())
    sources += [reading.get(k, {}).get("source") for k in ("time_step", "channel_names")]
    return bool({"stated", "guessed", "assumed"} & set(sources)) or bool(
        reading.get("restated"))


def _note_restated(record: dict[str, Any], earlier: Statement, later: Statement) -> None:
    """Add to the reading's account what a new statement changed from an earlier one."""
    before, now = earlier.as_arguments(), later.as_arguments()
    changed = {k: (before[k], v) for k, v in now.items() if k in before and before[k] != v}
    if not changed:
        return
    reading = record.setdefault("reading", {})
    reading["restated"] = {k: {"before": old, "now": new} for k, (old, new) in changed.items()}
    said = ", ".join(f"{k.replace('_', ' ')} {old!r}" for k, (old, _) in changed.items())
    reading["note"] = (f"{reading.get('note', '')}; you had said {said} before: "
                       "the new value is used")


def _looks_like_labels(path: Path, data: np.ndarray) -> bool:
    name = path.name.lower()
    return np.issubdtype(data.dtype, np.integer) and any(
        word in name for word in ("label", "mask", "seg", "man_track", "res_track")
    )
