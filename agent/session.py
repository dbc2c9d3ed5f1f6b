"""A session: the conversation, the workspace and the log of every call, exportable as a script.

:meth:`Session.export` writes, into the session folder,

* every artifact the tools produced (tables as CSV, images and labels as OME-TIFF),
* ``session.py``: a plain Python script that reads the same inputs, repeats every executed call
  with its exact parameters and writes the same outputs, without the agent or a model,
* ``provenance.json``: package versions, the model (name and file hash), each call's parameters
  and time, and the sha256 of every input file.

Running the exported script reproduces the session's tables exactly.
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.messages import BaseMessage

from agent.backends import ModelInfo
from tools.io import file_sha256
from tools.registry import REGISTRY, Registry, python_identifier
from tools.types import ImageMeta
from tools.workspace import Artifact, Workspace


@dataclass
class Event:
    """One thing the agent did in a turn: a tool call (done or refused) or a stop.

    Attributes
    ----------
    kind : {"call", "error", "stop"}
        ``call`` ran; ``error`` was refused or failed (the message went back to the model);
        ``stop`` ended the turn early (step limit, repeated errors).
    tool : str or None
        The tool the model asked for.
    arguments : dict
        The arguments as the model gave them (after dropping ones the user never gave).
    message : str
        The summary sent to the model, or the error.
    outputs : list of str
        Artifacts the call stored.
    seconds : float
        Time the call took.
    dropped : list of str
        Optional arguments removed because the user never gave them.
    retryable : bool
        An error the model can fix by calling differently (arguments, tool, a result it has
        not made yet); not a missing or refused file the user named, nor a tool that crashed.
    """

    kind: str
    tool: str | None
    arguments: dict[str, Any]
    message: str
    outputs: list[str] = field(default_factory=list)
    seconds: float = 0.0
    dropped: list[str] = field(default_factory=list)
    retryable: bool = False


@dataclass
class Exported:
    """Paths written by :meth:`Session.export`."""

    folder: Path
    script: Path
    provenance: Path
    outputs: dict[str, Path]


class Session:
    """Conversation, workspace and call log of one analysis session.

    Parameters
    ----------
    workspace : Workspace, optional
        Where files are read and artifacts kept; a new one over the current folder by default.
    model_info : ModelInfo, optional
        What answered, for provenance.
    registry : Registry, optional
        Where the logged calls' tools are looked up for script export.
    """

    def __init__(self, workspace: Workspace | None = None, *, model_info: ModelInfo | None = None,
                 registry: Registry | None = None) -> None:
        self.workspace = workspace if workspace is not None else Workspace()
        self.model_info = model_info
        self.registry = registry or REGISTRY
        self.messages: list[BaseMessage] = []
        self.requests: list[str] = []
        self.events: list[Event] = []
        self.started = _dt.datetime.now().astimezone()

    @property
    def calls(self) -> list[Any]:
        """Every executed call, in order (:class:`tools.registry.ToolResult`)."""
        return self.workspace.calls

    @property
    def folder(self) -> Path:
        """The session's output folder (made on first use)."""
        return self.workspace.session_dir

    # -- export -----------------------------------------------------------------------------

    def _produced(self) -> list[str]:
        return [name for call in self.calls for name in call.outputs]

    def _inputs(self) -> list[Artifact]:
        """Artifacts the calls used that no call produced: files read, or arrays given."""
        produced = set(self._produced())
        seen: dict[str, Artifact] = {}
        for call in self.calls:
            tool_ = self.registry.get(call.tool)
            for p in tool_.params:
                value = call.arguments.get(p.name)
                if p.kind == "artifact" and value is not None and value not in produced:
                    seen.setdefault(value, self.workspace.artifacts[value])
        return list(seen.values())

    def save_outputs(self, folder: Path | None = None) -> dict[str, Path]:
        """Write every artifact the calls produced into ``folder`` (the session folder)."""
        folder = Path(folder) if folder else self.folder
        saved = {}
        for name in self._produced():
            artifact = self.workspace.artifacts[name]
            target = folder / _file_name(artifact)
            if artifact.path is not None and artifact.path == target and target.exists():
                saved[name] = target
                continue
            saved[name] = self.workspace.save(name, folder=folder)
        return saved

    def script(self, input_files: dict[str, Path] | None = None) -> str:
        """The text of a Python script that repeats every executed call.

        Parameters
        ----------
        input_files : dict, optional
            File to read for each input artifact (by name); defaults to where it came from.
        """
        input_files = dict(input_files or {})
        imports: dict[str, set[str]] = {"tools.io": {"file_sha256"}}
        reads: list[str] = []
        for artifact in self._inputs():
            var = python_identifier(artifact.name)
            path = input_files.get(artifact.name) or Path(artifact.provenance["file"])
            where = _path_expression(path)
            digest = artifact.provenance.get("sha256") or file_sha256(path)
            if artifact.kind == "table":
                imports["tools.io"].add("read_table")
                reads.append(f"{var} = read_table(check({where}, {digest!r}))")
            else:
                imports["tools.io"].add("read_image")
                reads.append(f"{var}, _ = read_image(check({where}, {digest!r}))")
        steps: list[str] = []
        for i, call in enumerate(self.calls, start=1):
            tool_ = self.registry.get(call.tool)
            imports.setdefault(tool_.func.__module__, set()).add(tool_.func.__name__)
            if any(p.kind == "pixel_size" and call.arguments.get(p.name) for p in tool_.params):
                imports.setdefault("tools.types", set()).add("PixelSize")
            steps.append(f"# {i}. {call.tool}")
            chosen = getattr(call, "choices", None)  # values the tool chose itself, as a comment
            steps.append(tool_.snippet(call.arguments, call.outputs, chosen))
        writes: list[str] = []
        for name in self._produced():
            artifact = self.workspace.artifacts[name]
            var = python_identifier(name)
            target = f"OUT / {_file_name(artifact)!r}"
            if artifact.kind == "table":
                imports["tools.io"].add("write_table")
                writes.append(f"write_table({target}, {var}, overwrite=True)")
            elif artifact.kind in ("image", "labels"):
                writer = "write_labels" if artifact.kind == "labels" else "write_image"
                imports["tools.io"].add(writer)
                imports.setdefault("tools.types", set()).add("ImageMeta")
                writes.append(f"{writer}({target}, {var}, {_meta_literal(artifact.meta)}, "
                              "overwrite=True)")
        import_lines = [
            f"from {module} import {', '.join(sorted(names))}"
            for module, names in sorted(imports.items()) if names
        ]
        requests = "\n".join(f"  {i}. {r}" for i, r in enumerate(self.requests, start=1))
        model = self.model_info.name if self.model_info else "none"
        return _SCRIPT.format(
            date=self.started.isoformat(timespec="seconds"),
            model=model,
            requests=requests or "  (tool calls made directly)",
            imports="\n".join(import_lines),
            reads="\n".join(reads) or "# (no input files)",
            steps="\n".join(steps) or "# (no calls)",
            writes="\n".join(writes) or "# (no outputs)",
        )

    def provenance(self, outputs: dict[str, Path] | None = None) -> dict[str, Any]:
        """Versions, model, requests, calls with parameters, input hashes and output files."""
        record = self.workspace.provenance()
        inputs = {}
        for artifact in self._inputs():
            inputs[artifact.name] = {
                "kind": artifact.kind,
                "file": artifact.provenance.get("file"),
                "sha256": artifact.provenance.get("sha256"),
            }
        try:
            bia_version = importlib.metadata.version("bia-agent")
        except importlib.metadata.PackageNotFoundError:
            bia_version = "source"
        return {
            "bia": bia_version,
            "created": self.started.isoformat(timespec="seconds"),
            "model": self.model_info.as_dict() if self.model_info else None,
            "requests": self.requests,
            "versions": record["versions"],
            "inputs": inputs,
            "calls": record["calls"],
            "outputs": {name: str(path) for name, path in (outputs or {}).items()},
            "artifacts": record["artifacts"],
            "events": [
                {"kind": e.kind, "tool": e.tool, "arguments": e.arguments, "message": e.message,
                 "dropped_arguments": e.dropped}
                for e in self.events if e.kind != "call"
            ],
        }

    def export(self, folder: str | os.PathLike[str] | None = None, *,
               extra: dict[str, Any] | None = None) -> Exported:
        """Save outputs and write ``session.py`` and ``provenance.json`` into ``folder``.

        ``extra`` is added to ``provenance.json`` (e.g. a comparison with ground truth). Inputs
        that were never files (arrays added in code) are saved under ``inputs/`` so the script
        can read them.
        """
        target = Path(folder) if folder else self.folder
        target.mkdir(parents=True, exist_ok=True)
        outputs = self.save_outputs(target)
        input_files: dict[str, Path] = {}
        for artifact in self._inputs():
            if "file" not in artifact.provenance:
                path = self.workspace.save(artifact.name, folder=target / "inputs")
                artifact.provenance.update(file=str(path), sha256=file_sha256(path))
                input_files[artifact.name] = path
        script = target / "session.py"
        script.write_text(self.script(input_files), encoding="utf-8")
        provenance = target / "provenance.json"
        provenance.write_text(
            json.dumps({**self.provenance(outputs), **(extra or {})}, indent=2,
                       ensure_ascii=False, default=str),
            encoding="utf-8",
        )
        return Exported(target, script, provenance, outputs)


def _file_name(artifact: Artifact) -> str:
    return f"{artifact.name}.csv" if artifact.kind == "table" else f"{artifact.name}.ome.tif"


def _path_expression(path: Path) -> str:
    return f"Path({str(path)!r})"


def _meta_literal(meta: ImageMeta | None) -> str:
    if meta is None:
        return "None"
    return f"ImageMeta(axes={meta.axes!r}, spacing={dict(meta.spacing)!r}, unit={meta.unit!r})"


def artifact_names(events: Sequence[Event]) -> list[str]:
    """Names of the artifacts the given events produced, in order."""
    return [name for e in events for name in e.outputs]


_SCRIPT = '''#!/usr/bin/env python
"""Repeat a bia session without the assistant.

Recorded {date} (model: {model}). Requests:
{requests}

Usage: python session.py [OUTPUT_FOLDER]   (default: ./reproduced next to this script)
"""

import sys
import warnings
from pathlib import Path

{imports}

OUT = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent / "reproduced"
OUT.mkdir(parents=True, exist_ok=True)


def check(path, sha256):
    """Warn when an input file is not the one the session read."""
    path = Path(path)
    if file_sha256(path) != sha256:
        warnings.warn(f"{{path}} changed since the session (sha256 differs)", stacklevel=2)
    return path


# Inputs
{reads}

# Calls, with the exact parameters the session used
{steps}

# Outputs
{writes}
print(f"outputs written to {{OUT}}")
'''
