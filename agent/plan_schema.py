"""A JSON schema for plans, built from the registry at run time, and the reader of its JSON.

OpenAI-compatible servers with structured output (OpenAI, vLLM, llama.cpp's server, Ollama,
LM Studio) constrain a reply by a JSON schema sent as ``response_format``. This module writes
the plan language of :mod:`agent.grammar` as such a schema::

    {"plan": {"steps": [{"tool": "voronoi_otsu_labeling", "arguments": {"image": "blobs"}},
                        {"tool": "measure_objects",
                         "arguments": {"labels": "labels1", "image": "blobs"}}],
              "answer": [{"op": "count", "of": "labels1"},
                         {"op": "mean", "of": "table2", "column": "area", "where": null}]}}

or ``{"plan": {"reply": "..."}}`` for a plain question. Step ``n`` makes the variables the
grammar names for line ``n`` (``labels1``, ``table2``: :func:`agent.grammar.new_names`).

The schema restricts what JSON schema can say: each step is one of the offered tools with that
tool's own parameters (required ones required, ``Literal`` ones as enums, numbers with their
bounds), an artifact parameter takes only variable names of a kind it accepts (bound ones and
those steps can make: an intensity image cannot be named where labels are expected), and the
answer counts only labels or tables. What it cannot say (a variable used before the step that
makes it, the first step a request names) is left to :meth:`agent.plan.Plan.check`, as
everything is: :func:`plan_text` turns the JSON into plan text that :func:`agent.plan.parse_plan`
reads, so a server's plan is checked exactly as the embedded model's.

The schema keeps to OpenAI's strict subset (objects closed, every property required; an
optional argument not wanted is ``null``), which the other servers accept too.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from agent.grammar import _REF_KINDS, MAX_CALLS, new_names
from agent.plan import (
    ANSWER_FORMS,
    STATISTICS,
    PlanSyntaxError,
    makes_labels_from_images,
    output_kinds,
)
from tools.registry import Registry, Tool

_WHERE_PATTERN = r"^[a-z][a-z0-9_]* (<|<=|>|>=) -?[0-9]+([.][0-9]+)?$"
_COLUMN_PATTERN = r"^[a-z][a-z0-9_]*$"
_KEPT = ("type", "enum", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")

INSTRUCTIONS = """\
Write the plan as one JSON object that fits the response schema: the plan you would write as \
lines, each line one step {"tool": ..., "arguments": {...}}, in order. Step n makes the \
variables line n would make (kind and n). Arguments name variables as text; an optional \
argument not wanted is null, and so is "where" without a filter. A plain question: \
{"plan": {"reply": "..."}}."""
"""What the request's message ends with when the reply is constrained by the schema."""


@dataclass(frozen=True)
class PlanSchema:
    """A plan schema and what reads a reply written under it.

    Attributes
    ----------
    schema : dict
        The JSON schema of a reply.
    registry : Registry
        The tools, to turn a reply into plan text.
    name : str
        The schema's name in ``response_format``.
    """

    schema: dict[str, Any]
    registry: Registry = field(repr=False, compare=False)
    name: str = "bia_plan"

    def response_format(self) -> dict[str, Any]:
        """The ``response_format`` of a chat completion request (OpenAI's spelling)."""
        return {"type": "json_schema",
                "json_schema": {"name": self.name, "strict": True, "schema": self.schema}}

    @property
    def instructions(self) -> str:
        """How the plan the prompt teaches as lines is written in JSON.

        Appended to the request's message, so that the fixed system message stays a cacheable
        prefix. It shows no plan and no answer item: the 1.5B model behind a schema copied
        both (a ``where="area > 100"`` filter, a ``table2`` no step made) into its plans.
        """
        return INSTRUCTIONS

    def plan_text(self, reply: str) -> str:
        """The plan text of a reply (see :func:`plan_text`)."""
        return plan_text(reply, self.registry)


def _value_schema(prop: Mapping[str, Any]) -> dict[str, Any] | None:
    """A literal parameter's schema in the strict subset; None for what a plan cannot write."""
    if "anyOf" in prop:
        options = [s for s in (_value_schema(o) for o in prop["anyOf"]) if s is not None]
        return {"anyOf": options} if options else None
    kind = prop.get("type")
    if kind == "object":
        return None  # plan text has no dict literals
    out = {k: prop[k] for k in _KEPT if k in prop}
    if kind == "array":
        items = prop.get("items")
        item = _value_schema(items) if isinstance(items, Mapping) and items else None
        out["items"] = item or {"type": "number"}
    if "type" not in out and "enum" not in out:
        out = {"anyOf": [{"type": "number"}, {"type": "string"}, {"type": "boolean"}]}
    return out


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    options = schema["anyOf"] if list(schema) == ["anyOf"] else [schema]
    return {"anyOf": [*options, {"type": "null"}]}


def _closed(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(properties),
            "additionalProperties": False}


def _input_kind(tool_: Tool, kind: str) -> str:
    # As in agent.grammar: a segmenter's image is an intensity image, never a label image.
    return "intensity" if kind == "image" and makes_labels_from_images(tool_) else kind


def _accepts(key: str, kind: str) -> bool:
    accepted = _REF_KINDS.get(key)
    return accepted is None or kind in accepted


def plan_schema(registry: Registry, tools: Iterable[str] | None = None, *,
                variables: Mapping[str, str] | Sequence[str] = (), allow_reply: bool = True,
                max_calls: int = MAX_CALLS,
                parameters: Callable[[Tool], Iterable[str]] | None = None,
                first: Iterable[str] | None = None, inputs: Iterable[str] = ()) -> PlanSchema:
    """The JSON schema of plans over ``tools``, with the arguments of :func:`plan_grammar`.

    Parameters
    ----------
    registry : Registry
        Where the tools are described.
    tools : iterable of str, optional
        The tools a plan may call (all of the registry's by default).
    variables : mapping of str to str, or sequence of str
        The bound variables and their kinds (a plain sequence counts as images).
    allow_reply : bool
        Whether the ``{"reply": ...}`` branch (a plain question, no tools) is allowed.
    max_calls : int
        Most steps in a plan.
    parameters : callable, optional
        ``parameters(tool)`` gives the optional value parameters a plan may set for that
        tool (all by default); required and artifact parameters are always allowed.
    first : iterable of str, optional
        Accepted for the same call as :func:`agent.grammar.plan_grammar`; which tool comes
        first cannot be said in the strict schema subset (no ``prefixItems``).
    inputs : iterable of str
        Variables read from the request's own files: ``show`` may not name them, since
        showing a user their file back answers nothing.

    Returns
    -------
    PlanSchema

    Raises
    ------
    ValueError
        ``max_calls`` below 1, or no plan can be written (no variables, no tool without
        inputs, no reply).

    Examples
    --------
    >>> from agent.toolset import load_registry
    >>> s = plan_schema(load_registry(), ["threshold_labeling"], variables={"cells": "image"})
    >>> s.schema["$defs"]["step_threshold_labeling"]["properties"]["tool"]
    {'type': 'string', 'enum': ['threshold_labeling']}
    >>> s.schema["$defs"]["ref_intensity"]["enum"]
    ['cells']
    """
    del first  # see the docstring
    if max_calls < 1:
        raise ValueError(f"max_calls must be at least 1, got {max_calls}")
    kinds = dict(variables) if isinstance(variables, Mapping) else {
        v: "image" for v in variables}
    chosen = [registry.get(n) for n in dict.fromkeys(tools)] if tools is not None else list(
        registry)

    def artifact_inputs(tool_: Tool) -> list[tuple[Any, str]]:
        return [(p, _input_kind(tool_, p.artifact_kind or "image"))
                for p in tool_.params if p.kind == "artifact"]

    # Which tools can ever run: their required inputs are bound or made by a tool that can.
    available = set(kinds.values())
    usable: list[Tool] = []
    while True:
        found = [t for t in chosen if all(
            any(_accepts(key, k) for k in available)
            for p, key in artifact_inputs(t) if p.required)]
        made = {k for t in found for k in output_kinds(t)}
        if len(found) == len(usable) and made <= available:
            break
        usable, available = found, available | made
    names: dict[str, str] = dict(kinds)  # every variable a plan may name, and its kind
    for line in range(1, max_calls + 1):
        for tool_ in usable:
            names.update(zip(new_names(tool_, line), output_kinds(tool_), strict=True))

    defs: dict[str, Any] = {}

    def ref(key: str) -> dict[str, Any] | None:
        enum = [n for n, k in names.items() if _accepts(key, k)]
        if not enum:
            return None
        defs[f"ref_{key}"] = {"type": "string", "enum": enum}
        return {"$ref": f"#/$defs/ref_{key}"}

    steps = []
    for tool_ in usable:
        props = tool_.parameters_schema()["properties"]
        allowed = set(parameters(tool_)) if parameters is not None else None
        keys = dict(artifact_inputs(tool_))
        arguments: dict[str, Any] = {}
        for p in tool_.params:
            if p.kind == "pixel_size":
                continue
            if p.kind == "artifact":
                schema = ref(keys[p])
            elif p.required or allowed is None or p.name in allowed:
                schema = _value_schema(props.get(p.name, {}))
                if schema is None and p.required:
                    schema = _value_schema({})
            else:
                continue
            if schema is None:
                continue
            arguments[p.name] = schema if p.required else _nullable(schema)
        step = f"step_{tool_.name}"
        defs[step] = _closed({"tool": {"type": "string", "enum": [tool_.name]},
                              "arguments": _closed(arguments)})
        steps.append({"$ref": f"#/$defs/{step}"})

    labels = [n for n, k in names.items() if k == "labels"]
    tables = [n for n, k in names.items() if k == "table"]
    where = _nullable({"type": "string", "pattern": _WHERE_PATTERN})

    def item(ops: Sequence[str], of: list[str], **more: Any) -> dict[str, Any]:
        return _closed({"op": {"type": "string", "enum": list(ops)},
                        "of": {"type": "string", "enum": of}, **more})

    items = []
    if labels:
        items.append(item(["count"], labels))
    if tables:
        items.append(item(["count"], tables, where=where))
        items.append(item(STATISTICS, tables,
                          column={"type": "string", "pattern": _COLUMN_PATTERN}, where=where))
    hidden = set(inputs)
    shown = [n for n in names if n not in hidden]
    if shown:
        items.append(item(["show"], shown))
    branches = []
    if items:
        steps_schema = ({"type": "array", "items": {"anyOf": steps}, "maxItems": max_calls}
                        if steps else {"type": "array", "items": {"type": "null"},
                                       "maxItems": 0})
        branches.append(_closed({"steps": steps_schema,
                                 "answer": {"type": "array", "items": {"anyOf": items},
                                            "minItems": 1}}))
    if allow_reply:
        branches.append(_closed({"reply": {"type": "string"}}))
    if not branches:
        raise ValueError("no plan can be written: no variables and no tool without inputs")
    root = _closed({"plan": branches[0] if len(branches) == 1 else {"anyOf": branches}})
    root["$defs"] = defs
    return PlanSchema(root, registry)


# -- reading a reply ------------------------------------------------------------------------------


def _literal(value: Any, where: str) -> str:
    """``value`` as a Python literal of plan text."""
    if value is None:
        return "None"
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # JSON's escapes are Python's too
    if isinstance(value, list):
        return "[" + ", ".join(_literal(v, where) for v in value) + "]"
    raise PlanSyntaxError(f"{where}: a value must be a number, text, true/false, null or a list, "
                          f"not {json.dumps(value)[:60]}")


def _identifier(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.isidentifier():
        raise PlanSyntaxError(f"{where} must be a name, got {json.dumps(value)[:60]}")
    return value


def _step_line(step: Any, line: int, registry: Registry) -> str:
    where = f"step {line}"
    if not isinstance(step, dict) or not isinstance(step.get("tool"), str):
        raise PlanSyntaxError(f'{where}: a step is {{"tool": name, "arguments": {{...}}}}, got '
                              f"{json.dumps(step)[:80]}")
    name = _identifier(step["tool"], f"{where}: the tool")
    arguments = step.get("arguments", {})
    if not isinstance(arguments, dict):
        raise PlanSyntaxError(f"{where}: arguments must be an object, got "
                              f"{json.dumps(arguments)[:60]}")
    tool_ = registry.tools.get(name)
    # An unknown tool is written as it came: parse_plan refuses it with the tools there are.
    artifacts = {p.name for p in tool_.params if p.kind == "artifact"} if tool_ else set()
    targets = new_names(tool_, line) if tool_ else [f"result{line}"]
    parts = []
    for key, value in arguments.items():
        _identifier(key, f"{where}: an argument name")
        if value is None:
            continue  # an optional argument not wanted
        if key in artifacts and isinstance(value, str) and value.isidentifier():
            parts.append(f"{key}={value}")
        else:
            parts.append(f"{key}={_literal(value, f'{where}, {name}({key}=...)')}")
    call = f"{name}({', '.join(parts)})"
    return f"{', '.join(targets)} = {call}" if targets else call


def _answer_item(item: Any, index: int) -> str:
    where = f"answer item {index}"
    if not isinstance(item, dict):
        raise PlanSyntaxError(f'{where}: an item is {{"op": ..., "of": ...}}, got '
                              f"{json.dumps(item)[:60]}")
    op = _identifier(item.get("op"), f"{where}: op")
    if op not in ANSWER_FORMS:
        raise PlanSyntaxError(f"{where}: unknown op {op!r}; use one of {', '.join(ANSWER_FORMS)}")
    args = [_identifier(item.get("of"), f"{where}: of")]
    if item.get("column") is not None or op in STATISTICS:
        args.append(_literal(item.get("column"), where))
    if item.get("where") is not None:
        args.append(f"where={_literal(item['where'], where)}")
    return f"{op}({', '.join(args)})"


def plan_text(reply: str, registry: Registry) -> str:
    """The plan text (as :func:`agent.plan.parse_plan` reads it) of a JSON reply.

    A reply that does not begin with ``{`` (after a code fence) is returned as it is: a server
    that ignored the schema answered in plan text, which the planner checks like any plan.

    Parameters
    ----------
    reply : str
        The model's reply: ``{"plan": {"steps": [...], "answer": [...]}}`` or
        ``{"plan": {"reply": "..."}}`` (the same without the ``plan`` wrapper is read too).
    registry : Registry
        The tools, for the variables each step makes and which arguments are variables.

    Returns
    -------
    str
        One statement a line, ending in ``answer(...)``, or ``reply("...")``.

    Raises
    ------
    PlanSyntaxError
        Not JSON, or JSON not in the shape of a plan; the message says where.

    Examples
    --------
    >>> from agent.toolset import load_registry
    >>> reply = ('{"plan": {"steps": [{"tool": "threshold_labeling", "arguments": '
    ...          '{"image": "cells"}}], "answer": [{"op": "count", "of": "labels1"}]}}')
    >>> print(plan_text(reply, load_registry()))
    labels1 = threshold_labeling(image=cells)
    answer(count(labels1))
    """
    text = reply.strip()
    if text.startswith("```"):
        text = text.split("\n", 1)[1] if "\n" in text else ""
        text = text.rsplit("```", 1)[0].strip()
    if not text.startswith("{"):
        return reply
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PlanSyntaxError(
            f"the reply is not valid JSON ({exc.msg} at line {exc.lineno}, column "
            f'{exc.colno}); write one JSON object {{"plan": ...}} as the schema says') from None
    if isinstance(data, dict) and isinstance(data.get("plan"), dict):
        data = data["plan"]
    if not isinstance(data, dict) or not ({"reply", "steps", "answer"} & set(data)):
        raise PlanSyntaxError('the reply is JSON but not a plan: write {"plan": {"steps": '
                              '[...], "answer": [...]}} or {"plan": {"reply": "..."}}')
    if "reply" in data:
        if data.get("steps") or data.get("answer"):
            raise PlanSyntaxError("a plan has either steps and an answer or a reply, not both")
        if not isinstance(data["reply"], str) or not data["reply"].strip():
            raise PlanSyntaxError('reply takes one non-empty text: {"reply": "..."}')
        return f"reply({_literal(data['reply'], 'reply')})"
    steps = data.get("steps") or []
    answer = data.get("answer") or []
    if not isinstance(steps, list) or not isinstance(answer, list):
        raise PlanSyntaxError("steps and answer must be lists")
    if not answer:
        raise PlanSyntaxError("the plan has no answer: end it with answer items naming the "
                              'value that answers the request, e.g. {"op": "count", '
                              '"of": "labels1"}')
    lines = [_step_line(step, i, registry) for i, step in enumerate(steps, start=1)]
    lines.append(f"answer({', '.join(_answer_item(a, i) for i, a in enumerate(answer, 1))})")
    return "\n".join(lines)
