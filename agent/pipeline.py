"""A recorded analysis as data: the tool calls of a session, replayable on another image.

A :class:`Pipeline` is a list of :class:`Step` (tool, arguments, outputs) whose artifact
arguments name either the pipeline's one input image or an output of an earlier step. It is
read from

* a pipeline file, JSON or YAML: a list of steps, or ``{"steps": [...]}``, each step
  ``{"tool": ..., "arguments": {...}, "outputs": [...]}``. Artifact arguments that no earlier
  step produced stand for the input image (use ``"input"`` by convention). ``outputs`` may be
  left out: a step's outputs are then called ``step1``, ``step2`` ... (``step2_1``, ``step2_2``
  for a tool with several outputs);
* an exported session (``session.py`` written by :mod:`agent.session`; its ``provenance.json``
  beside it, or the script itself parsed with :mod:`ast`, never executed);
* a live :class:`~tools.workspace.Workspace` call log (``workspace.calls``), which is what an
  exported session holds.

:func:`replay` runs the steps on a new image in a workspace, mapping names as it goes.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tools.errors import BiaError, InputError, ToolCallError
from tools.registry import Registry, ToolResult
from tools.workspace import Workspace


class PipelineError(BiaError, ValueError):
    """A pipeline file or session cannot be read or does not make sense."""


@dataclass
class Step:
    """One tool call of a pipeline.

    Attributes
    ----------
    tool : str
        Registered tool name.
    arguments : dict
        Arguments as recorded; artifact arguments are symbolic names.
    outputs : list of str
        Symbolic names of the artifacts the call stores, in order.
    """

    tool: str
    arguments: dict[str, Any] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)


@dataclass
class Pipeline:
    """Steps over one input image.

    Attributes
    ----------
    steps : list of Step
        In order.
    input : str
        The symbolic name that stands for the input image.
    source : str
        Where the pipeline came from (a file, "session", "agent").
    """

    steps: list[Step]
    input: str
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form that :func:`load_pipeline` reads back."""
        return {"input": self.input, "source": self.source,
                "steps": [asdict(s) for s in self.steps]}

    def describe(self) -> str:
        """``denoise_nlm -> voronoi_otsu_labeling(spot_sigma=3.0) -> measure_objects``."""
        parts = []
        for step in self.steps:
            values = [f"{k}={v!r}" for k, v in step.arguments.items() if not _is_ref(self, v)]
            parts.append(f"{step.tool}({', '.join(values)})" if values else step.tool)
        return " -> ".join(parts)


def _is_ref(pipeline: Pipeline, value: Any) -> bool:
    produced = {o for s in pipeline.steps for o in s.outputs}
    return isinstance(value, str) and (value == pipeline.input or value in produced)


def build_pipeline(steps: Sequence[Step], registry: Registry, *, source: str = "") -> Pipeline:
    """Check steps against the registry and find the one input image they read.

    Raises
    ------
    PipelineError
        Unknown tool, no steps, an output name reused, or more than one external input.
    """
    if not steps:
        raise PipelineError("the pipeline has no steps")
    produced: set[str] = set()
    external: list[str] = []
    for i, step in enumerate(steps, start=1):
        try:
            tool_ = registry.get(step.tool)
        except ToolCallError as exc:
            raise PipelineError(f"step {i}: {exc}") from None
        n_out = sum(o.artifact_kind is not None for o in tool_.outputs)
        if not step.outputs:
            step.outputs = [f"step{i}"] if n_out == 1 else [f"step{i}_{j}"
                                                             for j in range(1, n_out + 1)]
        elif len(step.outputs) != n_out:
            raise PipelineError(
                f"step {i} ({step.tool}) lists {len(step.outputs)} outputs; the tool stores "
                f"{n_out}"
            )
        for p in tool_.params:
            value = step.arguments.get(p.name)
            if p.kind == "pixel_size":
                step.arguments.pop(p.name, None)  # each file's own calibration applies
            elif (p.kind == "artifact" or p.name == tool_.opens) and value is not None:
                if not isinstance(value, str):
                    raise PipelineError(f"step {i}: {p.name} must name an artifact, got {value!r}")
                if value not in produced and value not in external:
                    external.append(value)
        for name in step.outputs:
            if name in produced or name in external:
                raise PipelineError(f"step {i}: output name {name!r} is used twice")
            produced.add(name)
    if len(external) != 1:
        raise PipelineError(
            "a pipeline must read exactly one input image, but its steps read "
            + (", ".join(repr(e) for e in external) if external else "none")
            + "; artifact arguments must name the input or an earlier step's output"
        )
    return Pipeline(list(steps), external[0], source)


def pipeline_from_calls(calls: Sequence[ToolResult | Mapping[str, Any]], registry: Registry,
                        *, source: str = "session") -> Pipeline:
    """The pipeline a session's call log describes (``workspace.calls`` or provenance)."""
    steps = []
    for call in calls:
        if isinstance(call, ToolResult):
            steps.append(Step(call.tool, dict(call.arguments), list(call.outputs)))
        else:
            steps.append(Step(call["tool"], dict(call.get("arguments") or {}),
                              list(call.get("outputs") or [])))
    return build_pipeline(steps, registry, source=source)


def _steps_from_data(data: Any) -> list[Step]:
    raw = data.get("steps", data.get("calls")) if isinstance(data, Mapping) else data
    if not isinstance(raw, list):
        raise PipelineError("a pipeline is a list of steps or an object with a 'steps' list")
    steps = []
    for i, item in enumerate(raw, start=1):
        if not isinstance(item, Mapping) or not isinstance(item.get("tool"), str):
            raise PipelineError(f"step {i} must be an object with a 'tool' name, got {item!r}")
        arguments = item.get("arguments") or {}
        if not isinstance(arguments, Mapping):
            raise PipelineError(f"step {i}: 'arguments' must be an object")
        outputs = item.get("outputs") or []
        steps.append(Step(item["tool"], dict(arguments), [str(o) for o in outputs]))
    return steps


def _steps_from_script(text: str, registry: Registry, where: str) -> list[Step]:
    """The calls of an exported ``session.py``, read with :mod:`ast` (never executed)."""
    try:
        tree = ast.parse(text)
    except SyntaxError as exc:
        raise PipelineError(f"{where} is not valid Python: {exc}") from None
    by_function = {t.func.__name__: t for t in registry}
    steps = []
    for node in tree.body:
        if not isinstance(node, ast.Assign | ast.Expr):
            continue
        call = node.value
        if not isinstance(call, ast.Call):
            continue
        function = call.func
        if (isinstance(function, ast.Attribute) and function.attr == "call_with_meta"
                and isinstance(function.value, ast.Name)):
            function = function.value  # a movie step: the same tool, run frame by frame
        if not (isinstance(function, ast.Name) and function.id in by_function):
            continue
        tool_ = by_function[function.id]
        kinds = {p.name: p.kind for p in tool_.params}
        arguments: dict[str, Any] = {}
        for keyword in call.keywords:
            if keyword.arg in (None, "meta") or kinds.get(keyword.arg) == "pixel_size":
                continue
            if isinstance(keyword.value, ast.Name):
                arguments[keyword.arg] = keyword.value.id
            else:
                try:
                    arguments[keyword.arg] = ast.literal_eval(keyword.value)
                except ValueError:
                    raise PipelineError(
                        f"{where}, line {keyword.value.lineno}: argument {keyword.arg!r} is "
                        "not a literal value"
                    ) from None
        outputs: list[str] = []
        if isinstance(node, ast.Assign):
            target = node.targets[0]
            names = target.elts if isinstance(target, ast.Tuple) else [target]
            artifact_slots = [o.artifact_kind is not None for o in tool_.outputs]
            if len(names) == len(artifact_slots) and len(names) > 1:
                names = [n for n, is_artifact in zip(names, artifact_slots, strict=True)
                         if is_artifact]
            outputs = [n.id for n in names if isinstance(n, ast.Name) and n.id != "_"]
            if sum(artifact_slots) == 0:
                outputs = []
        steps.append(Step(tool_.name, arguments, outputs))
    if not steps:
        raise PipelineError(f"{where} calls no registered bia tool")
    return steps


def load_pipeline(path: str | Path, registry: Registry) -> Pipeline:
    """Read a pipeline file (JSON, YAML), a ``provenance.json`` or an exported ``session.py``.

    Raises
    ------
    PipelineError
        When the file is missing, unreadable, or not a pipeline over one input image.
    """
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"no pipeline file {str(path)!r}")
    text = path.read_text(encoding="utf-8")
    suffix = path.suffix.lower()
    if suffix == ".py":
        provenance = path.with_name("provenance.json")
        if provenance.is_file():
            try:
                calls = json.loads(provenance.read_text(encoding="utf-8")).get("calls")
            except (json.JSONDecodeError, AttributeError):
                calls = None
            if calls:
                return pipeline_from_calls(calls, registry, source=str(path))
        return build_pipeline(_steps_from_script(text, registry, str(path)), registry,
                              source=str(path))
    try:
        if suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as exc:
        raise PipelineError(f"{path} cannot be read as {suffix.lstrip('.') or 'JSON'}: {exc}") \
            from None
    return build_pipeline(_steps_from_data(data), registry, source=str(path))


def replay(pipeline: Pipeline, workspace: Workspace, image: str,
           registry: Registry) -> dict[str, str]:
    """Run every step on ``image`` (a file path or artifact name) in ``workspace``.

    Returns
    -------
    dict
        Symbolic name -> the artifact name it got in this workspace, for every output.
    """
    names = {pipeline.input: image}
    for i, step in enumerate(pipeline.steps, start=1):
        tool_ = registry.get(step.tool)
        arguments = dict(step.arguments)
        for p in tool_.params:
            if ((p.kind == "artifact" or p.name == tool_.opens)
                    and isinstance(arguments.get(p.name), str)):
                arguments[p.name] = names.get(arguments[p.name], arguments[p.name])
        try:
            result = tool_.run(workspace, arguments)
        except (InputError, ToolCallError) as exc:
            raise type(exc)(f"step {i} ({step.tool}): {exc}") from exc
        for symbol, actual in zip(step.outputs, result.outputs, strict=False):
            names[symbol] = actual
    return {symbol: actual for symbol, actual in names.items() if symbol != pipeline.input}
