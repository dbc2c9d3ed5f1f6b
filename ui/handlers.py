"""What the chat interface does, without the interface: uploads, samples, turns, results.

Each browser session owns one :class:`UISession`: a private upload folder (the workspace root),
an agent session, and the results of the last turn. Gradio calls these methods; the tests call
them directly.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from agent.session import Session
from tools.errors import BiaError, ImageFileError, InputError
from tools.workspace import Workspace
from ui import render

UPLOAD_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".zip")
DEFAULT_MAX_UPLOAD_MB = 200.0
MAX_UNZIPPED_MB = 2000.0

ModelFactory = Callable[[str | None, str | None], tuple[Any, Any]]
"""``factory(model, base_url) -> (chat_model, ModelInfo)``, e.g. agent.backends.make_chat_model."""


class UploadError(BiaError, ValueError):
    """An uploaded file was refused; the message says why and what is accepted."""


@dataclass
class TurnResult:
    """What the interface shows after a turn."""

    text: str
    overlay: np.ndarray | None = None
    table: pd.DataFrame | None = None
    table_csv: Path | None = None
    plot: Path | None = None
    trace: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=TRACE_COLUMNS))


TRACE_COLUMNS = ["step", "tool", "arguments", "seconds", "result"]


def _default_factory(model: str | None, base_url: str | None) -> tuple[Any, Any]:
    from agent.backends import make_chat_model

    return make_chat_model(model, base_url=base_url, progress=False)


class UISession:
    """One person's session in the interface.

    Parameters
    ----------
    model_factory : callable, optional
        Builds the chat model from the model name and base URL chosen in the interface.
    output_root : path-like, optional
        Where session folders are made.
    max_upload_mb : float
        Largest accepted upload.
    """

    def __init__(self, model_factory: ModelFactory | None = None, *,
                 output_root: str | Path | None = None,
                 max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB) -> None:
        self.model_factory = model_factory or _default_factory
        self.max_upload_mb = max_upload_mb
        self.uploads = Path(tempfile.mkdtemp(prefix="bia-ui-"))
        workspace = Workspace([self.uploads], output_root=output_root)
        self.session = Session(workspace)
        self.agent: Any = None
        self.model_choice: tuple[str | None, str | None] | None = None
        self.current: str | None = None
        self.exports = 0

    @property
    def workspace(self) -> Workspace:
        """The session's workspace."""
        return self.session.workspace

    # -- inputs ---------------------------------------------------------------------------

    def upload(self, path: str | Path) -> tuple[np.ndarray, str]:
        """Take an uploaded file into the workspace and make it the current image.

        Returns
        -------
        preview : ndarray
            An 8-bit picture of it.
        message : str
            What was loaded (name, shape, pixel size).

        Raises
        ------
        UploadError
            For a file that is too large, of an unsupported type, a zip without an OME-Zarr
            inside or with unsafe members, or an image that cannot be read.
        """
        source = Path(path)
        if not source.is_file():
            raise UploadError(f"{source.name}: the upload did not arrive as a file")
        size_mb = source.stat().st_size / 1e6
        if size_mb > self.max_upload_mb:
            raise UploadError(f"{source.name} is {size_mb:.0f} MB, above the upload limit of "
                              f"{self.max_upload_mb:.0f} MB; use `bia batch` for large data")
        suffix = source.suffix.lower()
        if suffix not in UPLOAD_SUFFIXES:
            raise UploadError(f"{source.name}: unsupported file type; upload one of "
                              f"{', '.join(UPLOAD_SUFFIXES)} (an OME-Zarr folder as .zip)")
        target = self._unique_target(source.name)
        if suffix == ".zip":
            target = self._extract_zarr(source, target)
        else:
            shutil.copyfile(source, target)
        try:
            artifact = self.workspace.get(target.relative_to(self.uploads).as_posix())
        except ImageFileError as exc:
            raise UploadError(f"{source.name}: {exc.problem}") from None
        except BiaError as exc:
            raise UploadError(f"{source.name}: {exc}") from None
        self.current = artifact.name
        return render.preview(artifact.data, artifact.meta), (
            f"Loaded **{artifact.name}**: {self.workspace.describe(artifact.name)}")

    def _unique_target(self, name: str) -> Path:
        stem = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in Path(name).name)
        stem = stem.lstrip(".") or "upload"
        target, i = self.uploads / stem, 2
        while target.exists():
            target, i = self.uploads / f"{i}_{stem}", i + 1
        return target

    def _extract_zarr(self, archive: Path, target: Path) -> Path:
        try:
            with zipfile.ZipFile(archive) as zf:
                members = zf.infolist()
                total = sum(m.file_size for m in members) / 1e6
                if total > MAX_UNZIPPED_MB:
                    raise UploadError(f"{archive.name} unpacks to {total:.0f} MB, above "
                                      f"{MAX_UNZIPPED_MB:.0f} MB")
                roots = set()
                for member in members:
                    parts = Path(member.filename).parts
                    unsafe = (member.filename.startswith(("/", "\\")) or ".." in parts
                              or (member.external_attr >> 16) & 0o170000 == 0o120000)
                    if unsafe:
                        raise UploadError(f"{archive.name}: unsafe path {member.filename!r} "
                                          "in the zip (absolute, '..' or a link)")
                    if parts:
                        roots.add(parts[0])
                stores = [r for r in roots if r.lower().endswith(".zarr")]
                if len(stores) != 1:
                    raise UploadError(f"{archive.name}: the zip must hold one folder ending in "
                                      f".zarr (an OME-Zarr image); found {sorted(roots)}")
                folder = target.with_suffix("")
                folder.mkdir()
                zf.extractall(folder)
        except zipfile.BadZipFile:
            raise UploadError(f"{archive.name}: not a valid zip file") from None
        return folder / stores[0]

    def sample(self, name: str) -> tuple[np.ndarray, str]:
        """Load a named sample dataset (see :func:`tools.datasets.list_datasets`)."""
        from tools.datasets import load_dataset

        dataset = load_dataset(name)
        image = dataset.image
        if image.ndim > 3 and "T" in dataset.meta.axes:
            raise UploadError(f"{name} is a time-lapse; the chat shows single images")
        artifact_name = self.workspace.unique_name(dataset.name)
        artifact = self.workspace.add(artifact_name, image, kind="image", meta=dataset.meta,
                                      provenance={"dataset": dataset.name})
        self.current = artifact.name
        return render.preview(artifact.data, artifact.meta), (
            f"Loaded sample **{artifact.name}**: {self.workspace.describe(artifact.name)}")

    # -- turns ----------------------------------------------------------------------------

    def _ensure_agent(self, model: str | None, base_url: str | None) -> None:
        choice = (model or None, base_url or None)
        if self.agent is not None and choice == self.model_choice:
            return
        from agent.planner import Agent

        chat_model, info = self.model_factory(*choice)
        self.session.model_info = info
        self.agent = Agent(chat_model, session=self.session, model_info=info)
        self.model_choice = choice

    def ask(self, text: str, *, model: str | None = None, base_url: str | None = None,
            on_event: Callable[[str, dict[str, Any]], None] | None = None) -> TurnResult:
        """Answer one message and collect what to show."""
        if not text or not text.strip():
            raise InputError("type a request or a question first")
        self._ensure_agent(model, base_url)
        self.agent.callback = on_event
        request = text.strip()
        if self.current:
            # The model only sees names; tell it which image the person is looking at.
            request += f"\n(Current image: {self.current})"
        files_before = len(self.workspace.files)
        reply = self.agent.ask(request)
        return self.collect(reply, new_files=self.workspace.files[files_before:])

    def collect(self, reply: Any, new_files: list[Path] | None = None) -> TurnResult:
        """Overlay, table, plot and trace for the artifacts and files a reply produced."""
        ws = self.workspace
        result = TurnResult(text=reply.text, trace=trace_table(reply.events))
        produced = [ws.artifacts[n] for n in reply.outputs if n in ws.artifacts]
        labels = next((a for a in reversed(produced) if a.kind == "labels"), None)
        if labels is not None:
            source_name = labels.provenance.get("inputs", {}).get("image") or self.current
            source = ws.artifacts.get(source_name) if source_name else None
            if source is not None and source.data.shape == labels.data.shape:
                result.overlay = render.overlay(source.data, labels.data, source.meta)
            else:
                result.overlay = render.overlay(labels.data > 0, labels.data, labels.meta)
        table = next((a for a in reversed(produced) if a.kind == "table"), None)
        if table is not None:
            result.table = table.data
            # Downloads live beside, not inside, what an export writes (it never overwrites).
            shown = ws.session_dir / "shown"
            shown.mkdir(exist_ok=True)
            result.table_csv = ws.save(table.name, folder=shown)
            plot_path = shown / f"{table.name}_plot.png"
            result.plot = (render.tracks_png(table.data, plot_path)
                           or render.histogram_png(table.data, plot_path))
        plots = [f for f in new_files or [] if f.suffix.lower() == ".png" and f.exists()]
        if plots:
            result.plot = plots[-1]  # a plot a tool drew (Bland-Altman...) beats our histogram
        return result

    def export(self) -> tuple[Path, Path]:
        """Export the session (script, provenance, outputs) and zip its folder.

        Returns the zip and the script.
        """
        if not self.session.calls:
            raise InputError("nothing to export yet: run an analysis first")
        self.exports += 1
        exported = self.session.export(self.workspace.session_dir / f"export-{self.exports}")
        archive = shutil.make_archive(str(exported.folder), "zip", root_dir=exported.folder)
        return Path(archive), exported.script


def trace_table(events: list[Any]) -> pd.DataFrame:
    """One row per tool call of a turn: tool, arguments, time, first line of the result."""
    rows = []
    for step, event in enumerate(events, start=1):
        if event.kind not in ("call", "error"):
            continue
        first_line = (event.message or "").strip().splitlines()[:1]
        rows.append({
            "step": step,
            "tool": event.tool or "?",
            "arguments": json.dumps(event.arguments, default=str, ensure_ascii=False),
            "seconds": round(float(event.seconds), 3),
            "result": ("error: " if event.kind == "error" else "") + (first_line[0][:200]
                                                                     if first_line else ""),
        })
    return pd.DataFrame(rows, columns=TRACE_COLUMNS)
