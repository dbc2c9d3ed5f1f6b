"""``%load_ext agent.jupyter``: ask bia from a notebook, on notebook variables and files.

::

    %load_ext agent.jupyter
    nuclei = tifffile.imread("plate1.tif")           # any numpy array in the notebook
    %bia segment the nuclei in nuclei and measure their area
    # -> the measurement table, as a pandas DataFrame (the cell's result)

    %%bia
    denoise plate2.tif, segment the nuclei
    and measure them                                 # a longer request as a cell

Before each request, the notebook's numpy arrays (2D to 5D, numeric) and DataFrames become
workspace artifacts under their variable names (integer arrays whose name says label, mask or
seg become label images); files are read from the notebook's folder. One session lasts for the
notebook, so a follow-up request can use what an earlier one made. The cell's result is the
last table the request produced (a DataFrame), else the last image or label array, else None;
the answer text is printed. ``%bia_config`` chooses the model (``%bia_config model=1.5b`` or
``%bia_config base_url=http://localhost:11434/v1 model=qwen2.5``) and the pixel size of notebook
arrays (``pixel_size=0.5`` µm); ``%bia_export`` writes ``session.py`` and ``provenance.json``;
``%bia_reset`` starts a new session.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tools.types import ImageMeta, default_axes
from tools.workspace import ARTIFACT_NAME, Workspace

_LABEL_WORDS = ("label", "mask", "seg")


class NotebookSession:
    """The agent and workspace behind ``%bia`` in one notebook.

    Parameters
    ----------
    user_ns : dict
        The notebook's namespace, where arrays are found.
    chat_model : BaseChatModel, optional
        The model; made from ``model``/``base_url`` (or the configured default) on first use.
    model_info : ModelInfo, optional
        What ``chat_model`` is.
    model, base_url : str, optional
        Passed to ``agent.backends.make_chat_model``.
    roots : list of path-like, optional
        Folders whose files may be read; the notebook's folder by default.
    outdir : path-like
        Where the session folder is made.
    pixel_size : float, optional
        Pixel size in µm given to notebook arrays (files keep their own).
    """

    def __init__(self, user_ns: dict[str, Any], *, chat_model: Any = None,
                 model_info: Any = None, model: str | None = None, base_url: str | None = None,
                 roots: list[str | Path] | None = None, outdir: str | Path = "bia_output",
                 pixel_size: float | None = None) -> None:
        self.user_ns = user_ns
        self.chat_model = chat_model
        self.model_info = model_info
        self.model = model
        self.base_url = base_url
        self.roots = roots
        self.outdir = outdir
        self.pixel_size = pixel_size
        self._agent: Any = None
        self._linked: dict[str, int] = {}  # artifact name -> id() of the notebook object

    @property
    def agent(self) -> Any:
        """The agent, built on first use (loading the model takes a while)."""
        if self._agent is None:
            try:
                from agent.backends import make_chat_model
                from agent.planner import Agent
                from agent.session import Session
            except ImportError as exc:
                raise RuntimeError(
                    f"%bia needs bia's agent (agent.planner), which is not installed here: {exc}"
                ) from None
            if self.chat_model is None:
                self.chat_model, self.model_info = make_chat_model(
                    self.model, base_url=self.base_url)
            workspace = Workspace(self.roots or [Path.cwd()], output_root=self.outdir)
            session = Session(workspace, model_info=self.model_info)
            self._agent = Agent(self.chat_model, session=session, model_info=self.model_info)
        return self._agent

    @property
    def workspace(self) -> Workspace:
        """The session's workspace."""
        return self.agent.session.workspace

    def sync_variables(self) -> list[str]:
        """Put the notebook's arrays and DataFrames into the workspace by variable name.

        A variable reassigned since the last request replaces its artifact; artifacts the
        agent made are never replaced.

        Returns
        -------
        list of str
            Names added or replaced.
        """
        workspace = self.workspace
        changed = []
        for name, value in list(self.user_ns.items()):
            if name.startswith("_") or not ARTIFACT_NAME.match(name):
                continue
            kind = _kind_of(name, value)
            if kind is None:
                continue
            existing = workspace.artifacts.get(name)
            if existing is not None:
                if name not in self._linked:
                    continue  # the agent's own artifact of that name wins
                if self._linked[name] == id(value) and existing.data is value:
                    continue
                del workspace.artifacts[name]
            meta = None
            if kind != "table":
                meta = ImageMeta(axes=default_axes(value.ndim), source=f"notebook:{name}")
                if self.pixel_size:
                    spatial = [a for a in meta.axes if a in "ZYX"]
                    meta.spacing = {a: float(self.pixel_size) for a in spatial}
                    meta.unit = "µm"
            try:
                workspace.add(name, value, kind=kind, meta=meta,
                              provenance={"notebook_variable": name})
            except Exception:  # an array the workspace refuses (empty) is simply not offered
                continue
            self._linked[name] = id(value)
            changed.append(name)
        return changed

    def ask(self, request: str) -> Any:
        """Run one request; print the answer; return the table (or array) it produced."""
        request = request.strip()
        if not request:
            raise ValueError("usage: %bia <what to do>, e.g. %bia segment the nuclei in img")
        self.sync_variables()
        reply = self.agent.ask(request)
        print(reply.text)
        artifacts = self.workspace.artifacts
        made = [artifacts[n] for n in reply.outputs if n in artifacts]
        for artifact in reversed(made):
            if artifact.kind == "table":
                return artifact.data
        for artifact in reversed(made):
            if isinstance(artifact.data, np.ndarray):
                return artifact.data
        return None

    def export(self, folder: str | None = None) -> Any:
        """Write the session's outputs, ``session.py`` and ``provenance.json``."""
        exported = self.agent.session.export(folder)
        print(f"exported to {exported.folder} (script: {exported.script})")
        return exported


def _kind_of(name: str, value: Any) -> str | None:
    if isinstance(value, pd.DataFrame):
        return "table"
    if not isinstance(value, np.ndarray) or not 2 <= value.ndim <= 5:
        return None
    if value.dtype.kind not in "biuf" or value.size == 0:
        return None
    if value.dtype.kind in "iu" and any(w in name.lower() for w in _LABEL_WORDS):
        return "labels"
    return "image"


_SESSIONS: dict[int, NotebookSession] = {}


def current_session(shell: Any = None) -> NotebookSession:
    """The notebook's session (made on first use)."""
    if shell is None:
        from IPython import get_ipython

        shell = get_ipython()
    if shell is None:
        raise RuntimeError("not running in IPython")
    key = id(shell)
    if key not in _SESSIONS:
        _SESSIONS[key] = NotebookSession(shell.user_ns)
    return _SESSIONS[key]


def configure(shell: Any = None, **options: Any) -> NotebookSession:
    """Start a new notebook session with these options (see :class:`NotebookSession`)."""
    if shell is None:
        from IPython import get_ipython

        shell = get_ipython()
    session = NotebookSession(shell.user_ns, **options)
    _SESSIONS[id(shell)] = session
    return session


def _parse_config(line: str) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for key, value in re.findall(r"(\w+)=(\S+)", line):
        if key not in ("model", "base_url", "outdir", "pixel_size", "root"):
            raise ValueError(f"unknown %bia_config option {key!r}; options: model, base_url, "
                             "outdir, pixel_size, root")
        if key == "pixel_size":
            options[key] = float(value)
        elif key == "root":
            options.setdefault("roots", []).append(value)
        else:
            options[key] = value
    return options


def load_ipython_extension(ipython: Any) -> None:
    """Register ``%bia``, ``%%bia``, ``%bia_config``, ``%bia_export`` and ``%bia_reset``."""

    def bia(line: str, cell: str | None = None) -> Any:
        request = f"{line}\n{cell}" if cell is not None else line
        try:
            return current_session(ipython).ask(request)
        except Exception as exc:  # show the problem like a tool would, not a traceback
            from tools.errors import BiaError

            if isinstance(exc, BiaError | RuntimeError | ValueError):
                print(f"bia: {exc}", file=sys.stderr)
                return None
            raise

    def bia_config(line: str) -> None:
        try:
            configure(ipython, **_parse_config(line))
        except ValueError as exc:
            print(f"bia: {exc}", file=sys.stderr)

    def bia_export(line: str) -> Any:
        return current_session(ipython).export(line.strip() or None)

    def bia_reset(line: str) -> None:
        old = _SESSIONS.pop(id(ipython), None)
        if old is not None:  # keep the model, drop the work
            configure(ipython, chat_model=old.chat_model, model_info=old.model_info,
                      model=old.model, base_url=old.base_url, roots=old.roots,
                      outdir=old.outdir, pixel_size=old.pixel_size)

    ipython.register_magic_function(bia, magic_kind="line_cell", magic_name="bia")
    ipython.register_magic_function(bia_config, magic_kind="line", magic_name="bia_config")
    ipython.register_magic_function(bia_export, magic_kind="line", magic_name="bia_export")
    ipython.register_magic_function(bia_reset, magic_kind="line", magic_name="bia_reset")


def unload_ipython_extension(ipython: Any) -> None:
    """Forget the notebook's session."""
    _SESSIONS.pop(id(ipython), None)
