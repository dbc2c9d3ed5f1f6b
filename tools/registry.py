"""The tool registry: one decorator turns a typed function into everything else.

A tool is a plain function with type hints and a numpydoc docstring. From it alone the registry
derives

* the OpenAI function-calling schema (:meth:`Tool.openai_schema`),
* argument validation with messages a model can act on (:meth:`Tool.validate`),
* a LangChain tool bound to a workspace (:meth:`Tool.as_langchain`),
* a short tool card for retrieval (:meth:`Tool.card`),
* the line of Python that repeats a call in an exported script (:meth:`Tool.snippet`).

Parameters annotated :data:`~tools.types.Image`, :data:`~tools.types.Labels` or
:data:`~tools.types.Table` are artifact names (or file paths) to a model and arrays or
DataFrames to the function; a parameter annotated :class:`~tools.types.PixelSize` is filled from
the first image input and hidden from the model. The decorated function is returned unchanged,
so it stays callable, picklable and testable without any of this.
"""

from __future__ import annotations

import difflib
import inspect
import json
import keyword
import re
import time
import types
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import numpy as np
import pandas as pd
import pydantic

from tools.choices import collect_choices, format_choices
from tools.docstrings import parse_docstring
from tools.errors import ArtifactNotFoundError, InputError, ToolCallError
from tools.types import ArtifactRole, InputFileRole, OutputFileRole, PixelSize

if TYPE_CHECKING:
    from tools.workspace import Workspace

F = TypeVar("F", bound=Callable[..., Any])
M = TypeVar("M")

TOOL_NAME = re.compile(r"^[a-z][a-z0-9_]{1,63}$")
ParamKind = Literal["artifact", "pixel_size", "input_path", "output_path", "value"]

_ARTIFACT_HELP = {
    "image": "Name of an image in the workspace, or a path to an image file.",
    "labels": "Name of a label image in the workspace, or a path to a label image file.",
    "table": "Name of a table in the workspace, or a path to a CSV file.",
}


_OUTPUT_HELP = "A file name (no folders); the file is written to the session folder."
_INPUT_HELP = "A path inside the workspace folders."


@dataclass(frozen=True)
class ParamSpec:
    """How one parameter of a tool is seen by a model and filled for the function."""

    name: str
    annotation: Any
    kind: ParamKind
    description: str
    default: Any = inspect.Parameter.empty
    artifact_kind: str | None = None

    @property
    def required(self) -> bool:
        """Whether a caller must give this parameter."""
        return self.default is inspect.Parameter.empty and self.kind != "pixel_size"


@dataclass(frozen=True)
class OutputSpec:
    """One value a tool returns: an artifact to store, or a plain value to report."""

    artifact_kind: str | None
    description: str


@dataclass
class ToolResult:
    """What running a tool through the registry produced.

    Attributes
    ----------
    tool : str
        The tool's name.
    arguments : dict
        The validated arguments, with artifacts given by name.
    outputs : list of str
        Names of the artifacts the call stored in the workspace.
    value : object
        Whatever the tool returned that is not an artifact (a number, a dict), else None.
    summary : str
        A short text for a model or a person: shapes, counts, a table head; never whole arrays.
    seconds : float
        Wall time of the call.
    choices : dict
        Values the tool chose itself, with the reason (:func:`tools.choices.record_choice`):
        ``{parameter: {"value": v, "reason": "..."}}``; empty when it chose nothing.
    """

    tool: str
    arguments: dict[str, Any]
    outputs: list[str]
    value: Any
    summary: str
    seconds: float
    choices: dict[str, Any] = field(default_factory=dict)


def _strip_optional(annotation: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(annotation)) == 2:
            return args[0], True
    return annotation, False


def _marker(annotation: Any, marker: type[M]) -> M | None:
    """The ``marker`` instance in ``Annotated[...]`` metadata (``X | None`` allowed), if any."""
    base, _ = _strip_optional(annotation)
    if typing.get_origin(base) is typing.Annotated:
        for meta in typing.get_args(base)[1:]:
            if isinstance(meta, marker):
                return meta
    return None


def _artifact_role(annotation: Any) -> ArtifactRole | None:
    return _marker(annotation, ArtifactRole)


def _is_pixel_size(annotation: Any) -> bool:
    base, _ = _strip_optional(annotation)
    return base is PixelSize


def _output_specs(annotation: Any, docs: Sequence[str]) -> list[OutputSpec]:
    if annotation in (None, type(None), inspect.Signature.empty):
        return []
    parts = (
        list(typing.get_args(annotation))
        if typing.get_origin(annotation) is tuple and Ellipsis not in typing.get_args(annotation)
        else [annotation]
    )
    if not any(_artifact_role(p) for p in parts):
        parts = [annotation]  # a plain tuple of values is one value
    specs = []
    for i, part in enumerate(parts):
        role = _artifact_role(part)
        specs.append(OutputSpec(role.kind if role else None, docs[i] if i < len(docs) else ""))
    return specs


def _clean_schema(schema: dict[str, Any], defs: Mapping[str, Any]) -> dict[str, Any]:
    """Inline references, drop titles and collapse ``X | None`` to ``X`` for a model."""
    if "$ref" in schema:
        schema = {**defs[schema["$ref"].rsplit("/", 1)[-1]], **schema}
        schema.pop("$ref")
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "title":
            continue
        if key == "anyOf":
            options = [o for o in value if o.get("type") != "null"]
            if len(options) == 1:
                out.update(_clean_schema(options[0], defs))
                continue
            out[key] = [_clean_schema(o, defs) for o in options]
        elif isinstance(value, dict):
            out[key] = _clean_schema(value, defs) if key != "properties" else {
                k: _clean_schema(v, defs) for k, v in value.items()
            }
        elif key in ("items", "prefixItems") and isinstance(value, list):
            out[key] = [_clean_schema(v, defs) for v in value]
        else:
            out[key] = value
    return out


def _describe_constraint(prop: Mapping[str, Any]) -> str:
    bounds = []
    for key, symbol in (
        ("exclusiveMinimum", ">"),
        ("minimum", ">="),
        ("exclusiveMaximum", "<"),
        ("maximum", "<="),
    ):
        if key in prop:
            bounds.append(f"{symbol} {prop[key]}")
    if "enum" in prop:
        bounds.append("one of " + ", ".join(json.dumps(v) for v in prop["enum"]))
    return " and ".join(bounds)


def _to_jsonable(value: Any) -> Any:
    if isinstance(value, PixelSize):
        return {"spacing": list(value.spacing), "unit": value.unit}
    if isinstance(value, tuple | list):
        return [_to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _to_jsonable(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    return value


def python_identifier(name: str) -> str:
    """Turn an artifact name into a valid, readable Python variable name."""
    ident = re.sub(r"\W+", "_", name).strip("_") or "artifact"
    if ident[0].isdigit() or ident in {"image", "labels", "table"} or keyword.iskeyword(ident):
        ident = f"{ident}_"
    return ident


class Tool:
    """A registered function and everything derived from it.

    Use the :func:`tool` decorator rather than building this directly.
    """

    def __init__(
        self,
        func: Callable[..., Any],
        *,
        category: str,
        name: str | None = None,
        output_names: Sequence[str] | None = None,
        movie: bool = False,
        tiled: bool = False,
    ) -> None:
        self.func = func
        self.movie = movie
        self.tiled = tiled
        self.name = name or func.__name__
        if not TOOL_NAME.match(self.name):
            raise TypeError(f"tool name {self.name!r} must be lower_snake_case, 2-64 characters")
        if not category:
            raise TypeError(f"tool {self.name!r} needs a category")
        self.category = category
        doc = parse_docstring(func)
        if not doc.summary:
            raise TypeError(f"tool {self.name!r} needs a docstring with a summary line")
        self.summary = doc.summary
        self.extended = doc.extended
        hints = typing.get_type_hints(func, include_extras=True)
        signature = inspect.signature(func)
        params: list[ParamSpec] = []
        for pname, parameter in signature.parameters.items():
            if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                raise TypeError(f"tool {self.name!r}: *args/**kwargs cannot be described")
            if pname not in hints:
                raise TypeError(f"tool {self.name!r}: parameter {pname!r} has no type hint")
            entry = doc.parameters.get(pname)
            annotation = hints[pname]
            role = _artifact_role(annotation)
            kind: ParamKind = (
                "artifact" if role
                else "pixel_size" if _is_pixel_size(annotation)
                else "input_path" if _marker(annotation, InputFileRole)
                else "output_path" if _marker(annotation, OutputFileRole)
                else "value"
            )
            if entry is None and kind != "pixel_size":
                raise TypeError(f"tool {self.name!r}: parameter {pname!r} is not documented")
            params.append(
                ParamSpec(
                    name=pname,
                    annotation=annotation,
                    kind=kind,
                    description=entry.description if entry else "",
                    default=parameter.default,
                    artifact_kind=role.kind if role else None,
                )
            )
        self.params = params
        self.outputs = _output_specs(
            hints.get("return", inspect.Signature.empty), [r.description for r in doc.returns]
        )
        n_artifacts = sum(o.artifact_kind is not None for o in self.outputs)
        if output_names is not None and len(output_names) != n_artifacts:
            raise TypeError(
                f"tool {self.name!r}: {len(output_names)} output names for {n_artifacts} outputs"
            )
        self.output_names = list(output_names) if output_names else None
        self.model = self._build_model()

    # -- derived descriptions -------------------------------------------------------------

    def _build_model(self) -> type[pydantic.BaseModel]:
        fields: dict[str, Any] = {}
        for p in self.params:
            if p.kind == "pixel_size":
                continue
            if p.kind == "artifact":
                _, optional = _strip_optional(p.annotation)
                annotation: Any = str | None if optional else str
                description = f"{_ARTIFACT_HELP[p.artifact_kind or 'image']} {p.description}"
            elif p.kind in ("input_path", "output_path"):
                _, optional = _strip_optional(p.annotation)
                annotation = str | None if optional else str
                help_ = _OUTPUT_HELP if p.kind == "output_path" else _INPUT_HELP
                description = f"{help_} {p.description}"
            else:
                annotation = p.annotation
                description = p.description
            default = ... if p.default is inspect.Parameter.empty else p.default
            fields[p.name] = (annotation, pydantic.Field(default, description=description.strip()))
        config = pydantic.ConfigDict(extra="forbid", arbitrary_types_allowed=False)
        return pydantic.create_model(f"{self.name}_arguments", __config__=config, **fields)

    @property
    def description(self) -> str:
        """The text a model reads about the tool: summary and extended description."""
        return f"{self.summary}\n\n{self.extended}".strip()

    def parameters_schema(self) -> dict[str, Any]:
        """JSON schema of the arguments a model may give, defaults and bounds in descriptions."""
        raw = self.model.model_json_schema()
        schema = _clean_schema(raw, raw.get("$defs", {}))
        schema.pop("$defs", None)
        for name, prop in schema.get("properties", {}).items():
            notes = [prop.get("description", "")]
            constraint = _describe_constraint(prop)
            if constraint:
                notes.append(f"Must be {constraint}.")
            if name not in schema.get("required", []) and "default" in prop:
                if prop["default"] is None:
                    # Small models invent values for optional numbers; tell them not to.
                    notes.append("Optional: leave it out unless the user asked for it.")
                else:
                    notes.append(f"Default: {json.dumps(prop['default'])}.")
            prop["description"] = " ".join(n for n in notes if n).strip()
        schema["additionalProperties"] = False
        schema.setdefault("required", [])
        return schema

    def openai_schema(self) -> dict[str, Any]:
        """The tool in OpenAI function-calling format."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters_schema(),
            },
        }

    def card(self) -> str:
        """A short plain-text description of the tool for retrieval and prompts."""
        lines = [f"{self.name} ({self.category}): {self.summary}"]
        if self.extended:
            lines.append(self.extended)
        props = self.parameters_schema()["properties"]
        for p in self.params:
            if p.kind == "pixel_size":
                lines.append(f"- {p.name}: taken from the input image's pixel size")
                continue
            type_ = p.artifact_kind if p.kind == "artifact" else props[p.name].get("type", "value")
            required = " (required)" if p.required else ""
            lines.append(f"- {p.name} [{type_}]{required}: {props[p.name]['description']}")
        for out in self.outputs:
            what = out.artifact_kind or "value"
            lines.append(f"Returns {what}: {out.description}".rstrip(": "))
        return "\n".join(lines)

    # -- validation and calls -------------------------------------------------------------

    def _format_validation_error(self, error: pydantic.ValidationError) -> str:
        problems = []
        valid = [p.name for p in self.params if p.kind != "pixel_size"]
        for err in error.errors():
            loc = ".".join(str(part) for part in err["loc"]) or "arguments"
            root = str(err["loc"][0]) if err["loc"] else ""
            if err["type"] == "extra_forbidden":
                close = difflib.get_close_matches(root, valid, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                problems.append(f"unknown parameter {root!r}{hint}")
            elif err["type"] == "missing" and len(err["loc"]) == 1:
                problems.append(f"missing required parameter {loc!r}")
            elif err["type"] == "missing":
                problems.append(f"parameter {root!r}: item {loc[len(root) + 1:]} is missing")
            else:
                got = json.dumps(_to_jsonable(err.get("input")), default=str)[:80]
                problems.append(f"parameter {loc!r}: {err['msg']} (got {got})")
        takes = ", ".join(
            f"{p.name}{'' if p.required else '?'}" for p in self.params if p.kind != "pixel_size"
        )
        return (
            f"Invalid arguments for tool {self.name!r}: " + "; ".join(problems)
            + f". It takes: {takes} (? = optional)."
        )

    def validate(self, arguments: Mapping[str, Any] | str | None) -> dict[str, Any]:
        """Check arguments from a caller or a model and return them with defaults filled.

        Parameters
        ----------
        arguments : dict or str or None
            Keyword arguments, or the JSON text of them as a model writes it.

        Returns
        -------
        dict
            The validated arguments; artifact parameters are still names.

        Raises
        ------
        ToolCallError
            When the JSON is malformed, a parameter is unknown or missing, or a value has the
            wrong type or is out of bounds. The message says which and what the tool takes.
        """
        if arguments is None or arguments == "":
            arguments = {}
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments)
            except json.JSONDecodeError as exc:
                raise ToolCallError(
                    f"Arguments for tool {self.name!r} are not valid JSON ({exc.msg} at "
                    f"character {exc.pos}). Send a JSON object such as "
                    f'{{"{self.params[0].name}": ...}}.'
                ) from None
        if not isinstance(arguments, Mapping):
            raise ToolCallError(
                f"Arguments for tool {self.name!r} must be a JSON object, "
                f"got {type(arguments).__name__}."
            )
        try:
            model = self.model.model_validate(dict(arguments))
        except pydantic.ValidationError as exc:
            raise ToolCallError(self._format_validation_error(exc)) from None
        return {name: getattr(model, name) for name in type(model).model_fields}

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.func(*args, **kwargs)

    def run(
        self, workspace: Workspace, arguments: Mapping[str, Any] | str | None = None
    ) -> ToolResult:
        """Validate arguments, resolve artifacts, call the function and store what it returns.

        Parameters
        ----------
        workspace : Workspace
            Where artifact names and file paths are resolved and results are stored.
        arguments : dict or str or None
            Keyword arguments or their JSON text; artifacts by name or file path.

        Returns
        -------
        ToolResult
            Stored output names, any plain value, and a short summary.
        """
        values = self.validate(arguments)
        call_kwargs: dict[str, Any] = {}
        inputs: dict[str, str] = {}
        frame_axes: dict[str, int] = {}
        first_image = None
        for p in self.params:
            if p.kind != "artifact" or values.get(p.name) is None:
                continue
            artifact = workspace.get(values[p.name])
            workspace.check_kind(artifact, p.artifact_kind or "image", parameter=p.name)
            if not self.tiled:  # tiled tools work block by block, whatever the size
                workspace.check_budget(artifact)
            values[p.name] = artifact.name
            inputs[p.name] = artifact.name
            call_kwargs[p.name] = artifact.data
            if artifact.meta is not None and "T" in artifact.meta.axes and not self.movie:
                frame_axes[p.name] = artifact.meta.axes.index("T")
            if first_image is None and artifact.kind in ("image", "labels"):
                first_image = artifact
        for p in self.params:
            if p.kind == "value":
                call_kwargs[p.name] = values[p.name]
            elif p.kind == "output_path":
                name = values[p.name]
                call_kwargs[p.name] = None if name is None else str(workspace.output_file(name))
            elif p.kind == "input_path":
                call_kwargs[p.name] = (
                    None if values[p.name] is None else str(workspace.input_file(values[p.name]))
                )
            elif p.kind == "pixel_size":
                call_kwargs[p.name] = first_image.meta.pixel_size() if first_image else None
                values[p.name] = call_kwargs[p.name]
        start = time.perf_counter()
        with collect_choices() as choices:  # what the tool chose itself (tools.choices)
            if frame_axes:
                parts = self._run_per_frame(call_kwargs, frame_axes)
            else:
                returned = self.func(**call_kwargs)
                parts = list(returned) if len(self.outputs) > 1 else [returned]
        seconds = time.perf_counter() - start
        base = first_image.name if first_image else next(iter(inputs.values()), self.name)
        outputs: list[str] = []
        plain: list[Any] = []
        names = iter(self.output_names or [])
        for spec, value in zip(self.outputs, parts, strict=False):
            if spec.artifact_kind is None:
                plain.append(value)
                continue
            suffix = next(names, None) or (
                "labels" if spec.artifact_kind == "labels" else
                "table" if spec.artifact_kind == "table" else self.name
            )
            stored = workspace.store(
                f"{base}_{suffix}",
                value,
                kind=spec.artifact_kind,
                like=first_image,
                provenance={
                    "tool": self.name,
                    "arguments": _to_jsonable(values),
                    "inputs": inputs,
                    **({"choices": choices} if choices else {}),
                },
            )
            outputs.append(stored.name)
        value = plain[0] if len(plain) == 1 else (plain or None)
        summary = "; ".join(
            [f"{name}: {workspace.describe(name)}" for name in outputs]
            + ([f"value: {summarize_value(value)}"] if value is not None else [])
        ) or "done"
        if choices:
            summary += f"; chosen: {format_choices(choices)}"
        result = ToolResult(self.name, _to_jsonable(values), outputs, value, summary, seconds,
                            choices=choices)
        workspace.log_call(result)
        return result

    def _run_per_frame(self, kwargs: dict[str, Any], frame_axes: Mapping[str, int]) -> list[Any]:
        """Call the function once per time point of the movie inputs and join the results.

        Images and labels are stacked along a leading time axis, tables are concatenated with a
        ``frame`` column, plain values are collected in a list (one per frame).
        """
        lengths = {kwargs[name].shape[axis] for name, axis in frame_axes.items()}
        if len(lengths) != 1:
            raise InputError(
                f"the movies given to {self.name!r} have different numbers of frames: "
                + ", ".join(f"{n}: {kwargs[n].shape[a]}" for n, a in frame_axes.items())
            )
        n_frames = lengths.pop()
        per_frame: list[list[Any]] = []
        for t in range(n_frames):
            frame_kwargs = dict(kwargs)
            for name, axis in frame_axes.items():
                frame_kwargs[name] = np.take(kwargs[name], t, axis=axis)
            returned = self.func(**frame_kwargs)
            per_frame.append(list(returned) if len(self.outputs) > 1 else [returned])
        joined: list[Any] = []
        for i, spec in enumerate(self.outputs or [OutputSpec(None, "")]):
            values = [frame[i] for frame in per_frame]
            if spec.artifact_kind in ("image", "labels"):
                joined.append(np.stack(values, axis=0))
            elif spec.artifact_kind == "table":
                tables = [v.assign(frame=t) for t, v in enumerate(values)]
                table = pd.concat(tables, ignore_index=True)
                joined.append(table[["frame", *[c for c in table.columns if c != "frame"]]])
            else:
                joined.append(values)
        return joined

    # -- adapters -------------------------------------------------------------------------

    def snippet(
        self,
        arguments: Mapping[str, Any],
        outputs: Sequence[str] = (),
        choices: Mapping[str, Any] | None = None,
    ) -> str:
        """The line of Python that repeats a call, for an exported script.

        Parameters
        ----------
        arguments : dict
            Validated arguments with artifacts by name (as in :attr:`ToolResult.arguments`).
        outputs : sequence of str
            Names the call stored its artifacts under; they become the assigned variables.
        choices : dict, optional
            What the tool chose itself (:attr:`ToolResult.choices`), written as a comment.

        Returns
        -------
        str
            E.g. ``nuclei_labels = voronoi_otsu_labeling(nuclei, spot_sigma=2.0)``.
        """
        parts = []
        for p in self.params:
            if p.name not in arguments:
                continue
            value = arguments[p.name]
            if p.kind == "artifact" and value is not None:
                text = python_identifier(str(value))
            elif p.kind == "pixel_size" and isinstance(value, Mapping):
                text = repr(PixelSize(tuple(value["spacing"]), value["unit"]))
            else:
                text = repr(value)
            parts.append(f"{p.name}={text}")
        call = f"{self.func.__name__}({', '.join(parts)})"
        targets = [python_identifier(o) for o in outputs]
        n_plain = sum(o.artifact_kind is None for o in self.outputs)
        if len(self.outputs) > 1:
            names = iter(targets)
            targets = [next(names, "_") if o.artifact_kind else "_" for o in self.outputs]
        elif n_plain:
            targets = ["result"]
        line = f"{', '.join(targets)} = {call}" if targets else call
        return f"{line}  # chosen: {format_choices(choices)}" if choices else line

    def as_langchain(self, workspace: Workspace) -> Any:
        """A LangChain ``StructuredTool`` that runs this tool in ``workspace``.

        The tool returns the call's summary text; errors a model can fix come back as text
        rather than exceptions so the model can retry.
        """
        from langchain_core.tools import StructuredTool

        def _run(**kwargs: Any) -> str:
            try:
                return self.run(workspace, kwargs).summary
            except (ToolCallError, InputError, ArtifactNotFoundError) as exc:
                return f"Error: {exc}"

        return StructuredTool.from_function(
            func=_run, name=self.name, description=self.description, args_schema=self.model
        )

    def __repr__(self) -> str:
        return f"Tool({self.name!r}, category={self.category!r})"


def summarize_value(value: Any, *, max_rows: int = 5) -> str:
    """A short text for a value a tool returned: never a whole array."""
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape}, dtype {value.dtype}"
    if isinstance(value, pd.DataFrame):
        head = value.head(max_rows).to_string(max_cols=12, float_format=lambda x: f"{x:.4g}")
        return f"table with {len(value)} rows and columns {list(value.columns)}\n{head}"
    if isinstance(value, float | np.floating):
        return f"{float(value):.6g}"
    text = json.dumps(_to_jsonable(value), default=str)
    return text if len(text) <= 500 else text[:500] + "..."


@dataclass
class Registry:
    """A set of tools by name."""

    tools: dict[str, Tool] = field(default_factory=dict)

    def register(self, tool_: Tool) -> Tool:
        """Add a tool; a second tool of the same name from another function is an error."""
        existing = self.tools.get(tool_.name)
        if existing is not None and existing.func.__qualname__ != tool_.func.__qualname__:
            raise TypeError(f"a tool named {tool_.name!r} is already registered")
        self.tools[tool_.name] = tool_
        return tool_

    def get(self, name: str) -> Tool:
        """The tool called ``name``; an unknown name gets an error listing close matches."""
        if name in self.tools:
            return self.tools[name]
        close = difflib.get_close_matches(str(name), list(self.tools), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ToolCallError(
            f"Unknown tool {name!r}.{hint} Available tools: {', '.join(sorted(self.tools))}."
        )

    def __contains__(self, name: object) -> bool:
        return name in self.tools

    def __iter__(self) -> Iterator[Tool]:
        return iter(self.tools.values())

    def __len__(self) -> int:
        return len(self.tools)

    def by_category(self, category: str) -> list[Tool]:
        """The tools of one category, in registration order."""
        return [t for t in self.tools.values() if t.category == category]

    def openai_schemas(self, names: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """OpenAI function-calling schemas of the named tools (all when ``names`` is None)."""
        chosen = self.tools.values() if names is None else [self.get(n) for n in names]
        return [t.openai_schema() for t in chosen]

    def run(
        self, workspace: Workspace, name: str, arguments: Mapping[str, Any] | str | None = None
    ) -> ToolResult:
        """Run the tool called ``name`` in ``workspace``."""
        return self.get(name).run(workspace, arguments)


REGISTRY = Registry()
"""The registry every tool in :mod:`tools` registers into."""


def tool(
    func: F | None = None,
    *,
    category: str,
    name: str | None = None,
    output_names: Sequence[str] | None = None,
    movie: bool = False,
    tiled: bool = False,
    registry: Registry | None = None,
) -> Any:
    """Register a typed, documented function as a tool and return it unchanged.

    Parameters
    ----------
    func : callable
        The function. Every parameter needs a type hint and a numpydoc entry.
    category : str
        Group of the tool, e.g. ``"denoise"``, ``"segment"``, ``"measure"``.
    name : str, optional
        Tool name; the function's name by default.
    output_names : sequence of str, optional
        Suffixes for stored artifacts (``"labels"`` stores ``<input>_labels``); by default
        ``labels``/``table`` for those kinds and the tool name for images.
    movie : bool
        The function takes whole movies (a ``T`` axis), as trackers do. Other tools given an
        input with a ``T`` axis are run frame by frame by the registry: images and labels are
        stacked, tables get a ``frame`` column.
    tiled : bool
        The tool processes its inputs block by block (see :mod:`tools.tiling`), so inputs
        above the workspace's pixel budget are accepted.
    registry : Registry, optional
        Where to register; the module-wide :data:`REGISTRY` by default.

    Returns
    -------
    callable
        ``func`` itself, with the :class:`Tool` at ``func.__bia_tool__``.
    """

    def decorate(f: F) -> F:
        built = Tool(f, category=category, name=name, output_names=output_names, movie=movie,
                     tiled=tiled)
        (registry if registry is not None else REGISTRY).register(built)
        f.__bia_tool__ = built  # type: ignore[attr-defined]
        return f

    return decorate(func) if func is not None else decorate


def get_tool(func_or_name: Callable[..., Any] | str, registry: Registry | None = None) -> Tool:
    """The :class:`Tool` of a decorated function, or of a registered name."""
    if isinstance(func_or_name, str):
        return (registry if registry is not None else REGISTRY).get(func_or_name)
    found = getattr(func_or_name, "__bia_tool__", None)
    if found is None:
        raise ToolCallError(f"{func_or_name!r} is not a registered tool")
    return found
