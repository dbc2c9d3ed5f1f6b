"""An analysis plan: tool calls over variables, ending in the value that answers the request.

A plan is text, one statement per line, in Python syntax, and is read with :mod:`ast` only
(never executed as Python)::

    smooth = denoise_nlm(image=blobs)
    labels = voronoi_otsu_labeling(image=smooth)
    table = measure_objects(labels=labels, image=blobs)
    answer(mean(table, "area"))

Variables are bound before the plan is written (the files a request names, the session's
artifacts: see :class:`Binding`) or made by a call. Calls take keyword arguments only: literals
or variables. The last line is ``answer(...)`` with one or more of ``count(v)``,
``mean|median|sum|min|max|std(v, "column")`` (each with an optional ``where="column op
number"`` filter) and ``show(v)``; a plain question is the single line ``reply("...")``.

:func:`parse_plan` reads and checks a plan against the registry (tool and parameter names,
argument values, artifact kinds flowing image -> labels -> table, every made variable used);
:func:`run_plan` runs it through the registry in a workspace and evaluates the answer. Model
mistakes are typed errors: :class:`PlanSyntaxError`, :class:`PlanTypeError`,
:class:`ToolRunError`.
"""

from __future__ import annotations

import ast
import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from tools.errors import BiaError, ToolCallError
from tools.registry import Registry, Tool, ToolResult, python_identifier
from tools.workspace import Artifact, Workspace

STATISTICS = ("mean", "median", "sum", "min", "max", "std")
"""Answer forms that reduce one table column to a number."""
ANSWER_FORMS = ("count", *STATISTICS, "show")
RESERVED = frozenset({"answer", "reply", *ANSWER_FORMS, "True", "False", "None", "_"})
ARTIFACT_KINDS = ("image", "labels", "table", "mesh", "plot")
_WHERE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|<|>)\s*([-+]?(?:\d+\.?\d*|\.\d+)"
                    r"(?:[eE][-+]?\d+)?)\s*$")
_UNIT_SUFFIX = {"px": "px", "um": "µm", "um2": "µm²", "um3": "µm³", "nm": "nm", "nm2": "nm²",
                "nm3": "nm³", "mm": "mm", "mm2": "mm²", "mm3": "mm³", "px2": "px²"}


class PlanError(BiaError, ValueError):
    """A plan cannot be used; the message says what is wrong and on which line."""


class PlanSyntaxError(PlanError):
    """The plan text is not a plan: not Python, or statements other than calls and answer."""


class PlanTypeError(PlanError):
    """The plan reads but does not fit: unknown tool or parameter, wrong value or kind, a
    variable not defined or never used, a malformed answer."""


class ToolRunError(PlanError):
    """A checked plan failed while running (a tool error, a missing file, no objects found).

    Attributes
    ----------
    line : int
        The plan line that failed (1-based; 0 for the answer when no line is known).
    tool : str or None
        The tool that failed, if a call failed.
    done : list of ToolResult
        The calls that ran before the failure (their artifacts stay in the workspace).
    """

    def __init__(self, message: str, *, line: int = 0, tool: str | None = None,
                 done: Sequence[ToolResult] = ()) -> None:
        super().__init__(message)
        self.line = line
        self.tool = tool
        self.done = list(done)


@dataclass(frozen=True)
class Ref:
    """A variable used as an argument."""

    name: str


@dataclass(frozen=True)
class Binding:
    """A variable bound before the plan is written.

    Attributes
    ----------
    name : str
        The variable, a Python identifier (``plate3`` for ``plate3.tif``).
    kind : {"image", "labels", "table", "mesh", "plot", "value"}
        What it holds.
    ref : str or None
        The workspace artifact name or file path it stands for; the variable's own name when
        None.
    description : str
        Shape, dtype, axes and pixel size, for the model's prompt.
    """

    name: str
    kind: str
    ref: str | None = None
    description: str = ""


@dataclass
class Call:
    """One ``targets = tool(arguments)`` line."""

    targets: list[str]
    tool: str
    arguments: dict[str, Any]
    line: int


@dataclass(frozen=True)
class AnswerItem:
    """One value of ``answer(...)``: ``form(variable, column, where=...)``."""

    form: str
    variable: str
    column: str | None = None
    where: tuple[str, str, float] | None = None

    def render(self) -> str:
        """The item as plan text."""
        args = [self.variable]
        if self.column is not None:
            args.append(_quote(self.column))
        if self.where is not None:
            column, op, number = self.where
            args.append(f"where={_quote(f'{column} {op} {_number_text(number)}')}")
        return f"{self.form}({', '.join(args)})"


@dataclass
class Plan:
    """A parsed, checked plan.

    Attributes
    ----------
    calls : list of Call
        The tool calls, in order.
    answer : list of AnswerItem
        What answers the request (empty for a reply).
    reply : str or None
        The text of a ``reply("...")`` plan (a plain question), else None.
    variables : dict of str to Binding
        The variables bound before the plan.
    kinds : dict of str to str
        The kind of every variable, bound or made.
    """

    calls: list[Call] = field(default_factory=list)
    answer: list[AnswerItem] = field(default_factory=list)
    reply: str | None = None
    variables: dict[str, Binding] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)

    @property
    def is_reply(self) -> bool:
        """Whether the plan answers in words only, without tools."""
        return self.reply is not None

    def check(self, registry: Registry,
              variables: Mapping[str, Binding | str] | None = None) -> Plan:
        """Check the plan against the registry and the bound variables.

        Parameters
        ----------
        registry : Registry
            Where tools are looked up and arguments validated.
        variables : mapping, optional
            Bound variables (name to :class:`Binding` or kind); the plan's own by default.

        Returns
        -------
        Plan
            ``self``, with :attr:`kinds` filled.

        Raises
        ------
        PlanTypeError
            The first problem found, with its line.
        """
        if variables is not None:
            self.variables = _bindings(variables)
        self.kinds = _check(self, registry)
        return self

    def render(self, names: Mapping[str, str] | None = None) -> str:
        """The plan as text, one statement a line (the form :func:`parse_plan` reads).

        ``names`` renames variables (e.g. to the artifacts they became, for a later prompt).
        """
        if self.reply is not None:
            return f"reply({_quote(self.reply)})"
        names = names or {}

        def rename(value: Any) -> Any:
            return Ref(names.get(value.name, value.name)) if isinstance(value, Ref) else value

        lines = [_render_call([names.get(t, t) for t in c.targets], c.tool,
                              {k: rename(v) for k, v in c.arguments.items()})
                 for c in self.calls]
        items = [AnswerItem(a.form, names.get(a.variable, a.variable), a.column, a.where)
                 for a in self.answer]
        lines.append(f"answer({', '.join(a.render() for a in items)})")
        return "\n".join(lines)

    def canonical(self, registry: Registry | None = None) -> str:
        """A form two equivalent plans share: made variables renamed in order of definition,
        arguments sorted, arguments equal to the tool's default left out (with ``registry``).
        Used to vote between sampled plans."""
        if self.reply is not None:
            return "reply"
        names: dict[str, str] = {}
        lines = []
        for call in self.calls:
            arguments = {}
            tool_ = registry.tools.get(call.tool) if registry is not None else None
            defaults = {p.name: p.default for p in tool_.params} if tool_ else {}
            for key in sorted(call.arguments):
                value = call.arguments[key]
                if not isinstance(value, Ref) and key in defaults and _same(defaults[key], value):
                    continue
                arguments[key] = Ref(names.get(value.name, value.name)) if isinstance(
                    value, Ref) else value
            targets = []
            for t in call.targets:
                names[t] = f"v{len(names) + 1}" if t != "_" else "_"
                targets.append(names[t])
            lines.append(_render_call(targets, call.tool, arguments))
        items = [AnswerItem(a.form, names.get(a.variable, a.variable), a.column, a.where)
                 for a in self.answer]
        lines.append(f"answer({', '.join(i.render() for i in items)})")
        return "\n".join(lines)

    def without_unused(self, registry: Registry) -> Plan:
        """The plan without calls whose results nothing uses (dead code), checked again.

        Used when the only problem of a plan is a result it never uses: dropping that call
        cannot change the answer.
        """
        calls = list(self.calls)
        while True:
            needed = {a.variable for a in self.answer} | {
                v.name for c in calls for v in c.arguments.values() if isinstance(v, Ref)}
            kept = [c for c in calls if not c.targets or any(
                t in needed for t in c.targets if t != "_")]
            if len(kept) == len(calls):
                break
            calls = kept
        pruned = Plan(calls=calls, answer=list(self.answer), reply=self.reply,
                      variables=dict(self.variables))
        return pruned.check(registry)

    def script_lines(self) -> list[str]:
        """The calls as lines of an exported script (no answer line)."""
        return [_render_call(c.targets, c.tool, c.arguments) for c in self.calls]


@dataclass
class AnswerValue:
    """The evaluated value of one :class:`AnswerItem`.

    Attributes
    ----------
    item : AnswerItem
        What was asked.
    value : float or int or str or object
        The number (count or statistic); for ``show`` the artifact's name or the plain value.
    column : str or None
        The table column actually used (``area_um2`` for ``"area"``).
    unit : str
        The unit of the number ("" when it has none, ``"µm²"``, ``"px"``).
    n : int
        How many rows or objects the value was computed over.
    kind : str
        The kind of the answered variable.
    """

    item: AnswerItem
    value: Any
    column: str | None = None
    unit: str = ""
    n: int = 0
    kind: str = ""
    mean: float | None = None
    """For ``show`` of a measurement table: the mean of its size column (``column``)."""

    @property
    def number(self) -> float | None:
        """The value as a float, or None for ``show`` of an artifact."""
        if isinstance(self.value, bool) or not isinstance(self.value, int | float | np.number):
            return None
        return float(self.value)


@dataclass
class PlanResult:
    """What running a plan produced.

    Attributes
    ----------
    results : list of ToolResult
        The calls that ran, in order.
    artifacts : dict of str to str
        Each variable's artifact name in the workspace.
    values : dict of str to object
        Plain values tools returned, by variable.
    answers : list of AnswerValue
        The evaluated answer.
    seconds : float
        Wall time of the run.
    """

    results: list[ToolResult] = field(default_factory=list)
    artifacts: dict[str, str] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    answers: list[AnswerValue] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def outputs(self) -> list[str]:
        """The artifacts the calls stored."""
        return [name for r in self.results for name in r.outputs]


# -- reading ------------------------------------------------------------------------------------


def parse_plan(text: str, registry: Registry,
               variables: Mapping[str, Binding | str] | None = None, *,
               check: bool = True) -> Plan:
    """Read a plan's text (with :mod:`ast`, never executing it) and check it.

    Parameters
    ----------
    text : str
        The plan: one statement a line. A fenced code block (three backticks) around it is
        accepted, as models write one.
    registry : Registry
        Where tools are looked up.
    variables : mapping of str to Binding or str, optional
        The variables bound before the plan (a kind string stands for a binding of that kind
        to an artifact of the same name).
    check : bool
        Also run :meth:`Plan.check` (the default).

    Returns
    -------
    Plan

    Raises
    ------
    PlanSyntaxError
        Not Python, or a statement that is neither a call nor the answer.
    PlanTypeError
        See :meth:`Plan.check`.

    Examples
    --------
    >>> from agent.toolset import load_registry
    >>> plan = parse_plan('labels = threshold_labeling(image=cells)\\nanswer(count(labels))',
    ...                   load_registry(), {"cells": "image"})
    >>> [c.tool for c in plan.calls], plan.answer[0].form
    (['threshold_labeling'], 'count')
    """
    if not isinstance(text, str):
        raise PlanSyntaxError(f"a plan must be text, got {type(text).__name__}")
    source = _strip_fence(text)
    if not source.strip():
        raise PlanSyntaxError("the plan is empty: write tool calls and an answer(...) line")
    try:
        tree = ast.parse(source, mode="exec")
    except SyntaxError as exc:
        line = (exc.text or "").strip()
        raise PlanSyntaxError(
            f"line {exc.lineno}: not valid plan syntax ({exc.msg})" + (f": {line!r}" if line
                                                                          else "")
        ) from None
    plan = Plan(variables=_bindings(variables or {}))
    body = tree.body
    for index, node in enumerate(body):
        last = index == len(body) - 1
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) and isinstance(
                node.value.func, ast.Name) and node.value.func.id in ("answer", "reply"):
            if not last:
                raise PlanSyntaxError(
                    f"line {node.lineno}: {node.value.func.id}(...) must be the last line")
            if node.value.func.id == "reply":
                if plan.calls:
                    raise PlanSyntaxError(
                        f"line {node.lineno}: reply(...) is for plain questions and takes the "
                        "whole plan; a plan with tool calls ends with answer(...)")
                plan.reply = _reply_text(node.value)
            else:
                plan.answer = _answer_items(node.value)
            continue
        plan.calls.append(_call(node))
    if plan.reply is None and not plan.answer:
        raise PlanSyntaxError("the plan has no answer: end it with answer(...) naming the "
                              "value that answers the request, e.g. answer(count(labels))")
    if check:
        plan.check(registry)
    return plan


def _strip_fence(text: str) -> str:
    lines = text.strip().splitlines()
    if lines and lines[0].startswith("```"):
        lines = lines[1:]
        if lines and lines[-1].strip().startswith("```"):
            lines = lines[:-1]
    return "\n".join(lines)


def _bindings(variables: Mapping[str, Binding | str]) -> dict[str, Binding]:
    out = {}
    for name, value in variables.items():
        binding = value if isinstance(value, Binding) else Binding(name, str(value))
        if not name.isidentifier():
            raise PlanTypeError(f"bound variable {name!r} is not a Python identifier")
        out[name] = binding
    return out


def _literal(node: ast.expr, where: str) -> Any:
    """A literal argument: number, string, True/False/None, a list/tuple of numbers."""
    if isinstance(node, ast.Constant) and (node.value is None or isinstance(
            node.value, bool | int | float | str)):
        return node.value
    if (isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd)
            and isinstance(node.operand, ast.Constant)
            and isinstance(node.operand.value, int | float)
            and not isinstance(node.operand.value, bool)):
        return -node.operand.value if isinstance(node.op, ast.USub) else node.operand.value
    if isinstance(node, ast.List | ast.Tuple):
        items = [_literal(e, where) for e in node.elts]
        if any(isinstance(i, Ref) for i in items):
            raise PlanSyntaxError(f"{where}: lists may hold literals only, not variables")
        return items
    if isinstance(node, ast.Name):
        return Ref(node.id)
    raise PlanSyntaxError(
        f"{where}: arguments must be literals (numbers, text, True/False/None, lists of "
        f"numbers) or variables, not {ast.unparse(node)!r}")


def _call(node: ast.stmt) -> Call:
    line = node.lineno
    if isinstance(node, ast.Assign):
        if len(node.targets) != 1:
            raise PlanSyntaxError(f"line {line}: one assignment a line (a = tool(...))")
        target = node.targets[0]
        if isinstance(target, ast.Name):
            targets = [target.id]
        elif isinstance(target, ast.Tuple) and all(isinstance(e, ast.Name) for e in target.elts):
            targets = [e.id for e in target.elts]  # type: ignore[attr-defined]
        else:
            raise PlanSyntaxError(f"line {line}: assign a call to variable names only")
        value = node.value
    elif isinstance(node, ast.Expr):
        targets, value = [], node.value
    else:
        raise PlanSyntaxError(
            f"line {line}: only tool calls (name = tool(param=...)) and a final answer(...) "
            f"are allowed in a plan, not {ast.unparse(node).splitlines()[0]!r}")
    if not isinstance(value, ast.Call) or not isinstance(value.func, ast.Name):
        raise PlanSyntaxError(
            f"line {line}: expected a tool call such as labels = segment_objects(image=x), "
            f"got {ast.unparse(value)!r}")
    name = value.func.id
    if value.args:
        raise PlanSyntaxError(
            f"line {line}: {name}(...) takes keyword arguments only (param=value)")
    arguments: dict[str, Any] = {}
    for kw in value.keywords:
        if kw.arg is None:
            raise PlanSyntaxError(f"line {line}: **arguments are not allowed")
        if kw.arg in arguments:
            raise PlanSyntaxError(f"line {line}: parameter {kw.arg!r} given twice")
        arguments[kw.arg] = _literal(kw.value, f"line {line}, {name}({kw.arg}=...)")
    return Call(targets, name, arguments, line)


def _reply_text(node: ast.Call) -> str:
    if (len(node.args) != 1 or node.keywords or not isinstance(node.args[0], ast.Constant)
            or not isinstance(node.args[0].value, str)):
        raise PlanSyntaxError('reply(...) takes one text: reply("...")')
    return node.args[0].value


def _answer_items(node: ast.Call) -> list[AnswerItem]:
    if node.keywords or not node.args:
        raise PlanSyntaxError(
            'answer(...) takes one or more values: count(v), mean(v, "column"), show(v)')
    return [_answer_item(arg) for arg in node.args]


def _answer_item(node: ast.expr) -> AnswerItem:
    if isinstance(node, ast.Name):
        return AnswerItem("show", node.id)
    forms = ", ".join(ANSWER_FORMS)
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
        raise PlanSyntaxError(f"answer(...): {ast.unparse(node)!r} is not one of {forms}")
    form = node.func.id
    if form not in ANSWER_FORMS:
        raise PlanSyntaxError(f"answer(...): unknown answer form {form!r}; use one of {forms}")
    if not node.args or not isinstance(node.args[0], ast.Name):
        raise PlanSyntaxError(f"answer(...): {form}(...) takes a variable first")
    variable = node.args[0].id
    column = None
    if form in STATISTICS:
        if len(node.args) != 2 or not isinstance(node.args[1], ast.Constant) or not isinstance(
                node.args[1].value, str):
            raise PlanSyntaxError(f'answer(...): {form} takes a table and a column: '
                                  f'{form}({variable}, "area")')
        column = node.args[1].value
    elif len(node.args) != 1:
        raise PlanSyntaxError(f"answer(...): {form}(...) takes one variable")
    where = None
    for kw in node.keywords:
        if kw.arg != "where" or form == "show":
            raise PlanSyntaxError(f"answer(...): {form}(...) takes no {kw.arg!r}")
        if not isinstance(kw.value, ast.Constant) or not isinstance(kw.value.value, str):
            raise PlanSyntaxError('answer(...): where takes text such as where="area > 100"')
        match = _WHERE.match(kw.value.value)
        if match is None:
            raise PlanSyntaxError(
                f"answer(...): where={kw.value.value!r} is not 'column op number' "
                "(op one of < <= > >=)")
        where = (match.group(1), match.group(2), float(match.group(3)))
    return AnswerItem(form, variable, column, where)


# -- checking -----------------------------------------------------------------------------------


def output_kinds(tool_: Tool) -> list[str]:
    """The kinds of what a tool returns, as plan variables (``["value"]`` for a plain value)."""
    kinds = [o.artifact_kind for o in tool_.outputs if o.artifact_kind is not None]
    return kinds or (["value"] if tool_.outputs else [])


def makes_labels_from_images(tool_: Tool) -> bool:
    """Whether a tool segments: it makes labels and takes no labels (its images are intensity
    images, so a label image passed to it is a mistake)."""
    return any(o.artifact_kind == "labels" for o in tool_.outputs) and not any(
        p.kind == "artifact" and p.artifact_kind == "labels" for p in tool_.params)


def _kind_fits(expected: str, given: str) -> bool:
    # Label images are images too (to smooth or threshold them); nothing else converts.
    return given == expected or (expected == "image" and given == "labels")


def _check(plan: Plan, registry: Registry) -> dict[str, str]:
    if plan.reply is not None:
        return {name: b.kind for name, b in plan.variables.items()}
    kinds = {name: b.kind for name, b in plan.variables.items()}
    made: dict[str, int] = {}
    used: set[str] = set()
    for call in plan.calls:
        where = f"line {call.line}"
        try:
            tool_ = registry.get(call.tool)
        except ToolCallError as exc:
            raise PlanTypeError(f"{where}: {exc}") from None
        params = {p.name: p for p in tool_.params if p.kind != "pixel_size"}
        placeholder: dict[str, Any] = {}
        for key, value in call.arguments.items():
            spec = params.get(key)
            if spec is None:
                placeholder[key] = value  # validate() names the unknown parameter
                continue
            if spec.kind == "artifact":
                expected = spec.artifact_kind or "image"
                if not isinstance(value, Ref):
                    if value is None:
                        placeholder[key] = None
                        continue
                    raise PlanTypeError(
                        f"{where}: {call.tool}({key}=...) takes a variable ({expected}), not "
                        f"the literal {value!r}; files the request names are bound to "
                        "variables already")
                given = _variable_kind(value.name, kinds, where)
                used.add(value.name)
                if given == "labels" and expected == "image" and makes_labels_from_images(tool_):
                    raise PlanTypeError(
                        f"{where}: {call.tool}({key}={value.name}) segments an intensity image, "
                        f"but {value.name} is already a label image; measure it directly, e.g. "
                        f"table = measure_objects(labels={value.name})")
                if not _kind_fits(expected, given):
                    raise PlanTypeError(
                        f"{where}: {call.tool}({key}={value.name}) needs {expected}, but "
                        f"{value.name} is {_a(given)}" + _kind_hint(expected, given, value.name))
                placeholder[key] = value.name
            elif isinstance(value, Ref):
                if value.name in kinds or value.name in made:
                    raise PlanTypeError(
                        f"{where}: {call.tool}({key}=...) takes a literal value, not the "
                        f"variable {value.name}")
                raise PlanTypeError(
                    f"{where}: {call.tool}({key}={value.name}): {value.name} is not defined; "
                    f"write text in quotes (\"{value.name}\") or a number")
            else:
                placeholder[key] = value
        try:
            tool_.validate(placeholder)
        except ToolCallError as exc:
            raise PlanTypeError(f"{where}: {exc}") from None
        out_kinds = output_kinds(tool_)
        targets = call.targets
        if not out_kinds and targets:
            raise PlanTypeError(f"{where}: {call.tool} returns nothing to assign")
        if out_kinds and len(targets) != len(out_kinds):
            what = ", ".join(out_kinds)
            raise PlanTypeError(
                f"{where}: {call.tool} returns {len(out_kinds)} value(s) ({what}); assign "
                f"{'them' if len(out_kinds) > 1 else 'it'} to {len(out_kinds)} variable(s)")
        for target, kind in zip(targets, out_kinds, strict=True):
            if target == "_":
                continue
            if target in RESERVED or target in registry:
                raise PlanTypeError(f"{where}: {target!r} cannot be a variable name")
            if target in made:
                raise PlanTypeError(
                    f"{where}: {target} is already made on line {made[target]}; give each "
                    "result a new name")
            kinds[target] = kind
            made[target] = call.line
    for item in plan.answer:
        given = _variable_kind(item.variable, kinds, "answer(...)")
        used.add(item.variable)
        if item.form == "count" and given not in ("labels", "table"):
            raise PlanTypeError(
                f"answer(...): count({item.variable}) needs labels or a table, but "
                f"{item.variable} is {_a(given)}" + _kind_hint("labels", given, item.variable))
        if item.form in STATISTICS and given != "table":
            raise PlanTypeError(
                f"answer(...): {item.form}({item.variable}, ...) needs a table, but "
                f"{item.variable} is {_a(given)}" + _kind_hint("table", given, item.variable))
        if item.where is not None and given != "table":
            raise PlanTypeError(
                f"answer(...): where= filters table rows, but {item.variable} is {_a(given)}; "
                "measure the objects first (measure_objects) and count the table")
    unused = [name for name in made if name not in used]
    if unused:
        name = unused[0]
        raise PlanTypeError(
            f"line {made[name]}: {name} is made but never used; pass it to a later call or "
            "name it in answer(...), or leave the call out")
    return kinds


def _variable_kind(name: str, kinds: Mapping[str, str], where: str) -> str:
    if name not in kinds:
        known = ", ".join(kinds) or "none"
        raise PlanTypeError(f"{where}: {name} is not defined (defined so far: {known})")
    return kinds[name]


def _a(kind: str) -> str:
    return {"image": "an image", "labels": "a label image", "table": "a table",
            "value": "a plain value"}.get(kind, f"a {kind}")


def _kind_hint(expected: str, given: str, name: str) -> str:
    if expected == "labels" and given == "image":
        return f"; segment it first, e.g. labels = segment_objects(image={name})"
    if expected == "table" and given in ("labels", "image"):
        return "; measure the objects first, e.g. table = measure_objects(labels=...)"
    return ""


# -- running ------------------------------------------------------------------------------------


def run_plan(plan: Plan, workspace: Workspace, registry: Registry, *,
             callback: Callable[[str, Any], None] | None = None) -> PlanResult:
    """Run a checked plan through the registry and evaluate its answer.

    Parameters
    ----------
    plan : Plan
        From :func:`parse_plan`.
    workspace : Workspace
        Where bound variables are found (artifacts or files) and results are stored.
    registry : Registry
        The tools.
    callback : callable, optional
        Called as ``callback("start", call)`` before each call and ``callback("end",
        tool_result)`` after it, for progress display.

    Returns
    -------
    PlanResult
        The calls that ran, each variable's artifact, and the answer's values.

    Raises
    ------
    ToolRunError
        A tool failed, a bound file is missing, a segmenter found no objects, or an answer
        column does not exist. Artifacts made before the failure stay in the workspace and
        are listed in :attr:`ToolRunError.done`.

    Examples
    --------
    >>> from agent.toolset import load_registry
    >>> from tools.synthetic import blobs
    >>> ws = Workspace()
    >>> _ = ws.add("cells", blobs(20, seed=0).image, kind="image")
    >>> plan = parse_plan("labels = threshold_labeling(image=cells)\\nanswer(count(labels))",
    ...                   load_registry(), {"cells": "image"})
    >>> run_plan(plan, ws, load_registry()).answers[0].value > 0
    True
    """
    start = time.perf_counter()
    result = PlanResult()
    if plan.reply is not None:
        return result
    for name, binding in plan.variables.items():
        result.artifacts[name] = binding.ref or name
    for call in plan.calls:
        tool_ = registry.get(call.tool)
        arguments = {}
        for key, value in call.arguments.items():
            if isinstance(value, Ref):
                if value.name in result.values:
                    arguments[key] = result.values[value.name]
                else:
                    arguments[key] = _resolve(value.name, result, workspace, call)
            else:
                arguments[key] = value
        if callback is not None:
            callback("start", call)
        try:
            ran = tool_.run(workspace, arguments)
        except BiaError as exc:
            raise ToolRunError(f"line {call.line}: {call.tool} failed: {exc}", line=call.line,
                               tool=call.tool, done=result.results) from None
        except Exception as exc:  # a tool bug: reported with the line, never a traceback
            raise ToolRunError(
                f"line {call.line}: {call.tool} failed: {type(exc).__name__}: {exc}",
                line=call.line, tool=call.tool, done=result.results) from None
        result.results.append(ran)
        if callback is not None:
            callback("end", ran)
        if ran.outputs:
            for target, name in zip(call.targets, ran.outputs, strict=False):
                if target != "_":
                    result.artifacts[target] = name
        elif call.targets:
            result.values[call.targets[0]] = ran.value
        _check_not_empty(tool_, ran, workspace, call, result)
    for item in plan.answer:
        result.answers.append(_evaluate(item, result, workspace, plan))
    result.seconds = time.perf_counter() - start
    return result


def _resolve(name: str, result: PlanResult, workspace: Workspace, call: Call) -> str:
    ref = result.artifacts.get(name, name)
    try:
        return workspace.get(ref).name
    except BiaError as exc:
        raise ToolRunError(f"line {call.line}: {name}: {exc}", line=call.line, tool=call.tool,
                           done=result.results) from None


def _check_not_empty(tool_: Tool, ran: ToolResult, workspace: Workspace, call: Call,
                     result: PlanResult) -> None:
    """A segmenter (labels from an image, not from labels) that found nothing failed."""
    if tool_.category != "segment" or any(
            p.kind == "artifact" and p.artifact_kind == "labels" for p in tool_.params):
        return
    for name in ran.outputs:
        artifact = workspace.artifacts[name]
        if artifact.kind == "labels" and not np.any(artifact.data):
            source = next(iter(ran.arguments.values()), "")
            raise ToolRunError(
                f"line {call.line}: {call.tool} found no objects in {source!r} (the label "
                "image is empty); try another segmenter or smaller size parameters",
                line=call.line, tool=call.tool, done=result.results)


_UNIT_WORDS = {
    "px": ("px", "pixel", "pixels", "px2", "px3", "pixels2", "sq_px", "square_pixels",
           "cubic_pixels", "voxels", "voxel"),
    "um2": ("um2", "µm2", "µm²", "um²", "sq_um", "sq_µm", "square_micrometres",
            "square_micrometers", "square_microns", "squaremicrometres", "squaremicrometers",
            "squaremicrons", "micrometres2", "microns2", "micron2"),
    "um3": ("um3", "µm3", "µm³", "um³", "cubic_micrometres", "cubic_micrometers",
            "cubic_microns", "cubicmicrometres", "cubicmicrometers", "cubicmicrons",
            "micrometres3", "microns3", "micron3"),
    "um": ("um", "µm", "micrometres", "micrometers", "microns", "micron"),
}
_COLUMN_WORDS = {
    "size": ("area", "volume"), "sizes": ("area", "volume"), "areas": ("area",),
    "volumes": ("volume",), "intensity": ("mean_intensity",),
    "brightness": ("mean_intensity",), "signal": ("mean_intensity",),
    "mean_brightness": ("mean_intensity",), "diameter": ("equivalent_diameter",),
    "length": ("major_axis",), "width": ("minor_axis",), "neighbors": ("n_neighbors",),
    "neighbours": ("n_neighbors",), "surface": ("surface_area",),
}


def _column_candidates(column: str) -> list[str]:
    """What a column written in words may mean: ``"size_px"`` -> ``area_px``, ``volume_px``;
    ``"volume_cubicmicrometres"`` -> ``volume_um3``."""
    base = column.lower().strip().replace(" ", "_").replace("-", "_")
    stem, suffix = base, ""
    for unit, words in _UNIT_WORDS.items():
        for word in sorted(words, key=len, reverse=True):
            if base == word:
                continue
            if base.endswith("_" + word) or (base.endswith(word) and len(base) > len(word)):
                stem, suffix = base[: -len(word)].rstrip("_"), unit
                break
        if suffix:
            break
    stems = _COLUMN_WORDS.get(stem, (stem,))
    out = [f"{s}_{suffix}" if suffix else s for s in stems]
    if suffix == "px":
        out += [f"{s}_px2" for s in stems]
    return [c for c in dict.fromkeys(out) if c != base]


def _find_named(table: pd.DataFrame, base: str) -> str | None:
    if base in table.columns:
        return base
    candidates = [c for c in table.columns if str(c).startswith(f"{base}_")
                  and str(c)[len(base) + 1:] in _UNIT_SUFFIX]
    if candidates:
        calibrated = [c for c in candidates if not str(c).endswith(("_px", "_px2"))]
        return str((calibrated or candidates)[0])
    return None


def find_column(table: pd.DataFrame, column: str) -> str:
    """The table column ``column`` names: itself, the one with a unit suffix, or its words.

    ``"area"`` finds ``area_um2`` when the image was calibrated, else ``area_px``; words users
    say find the column they mean (``"size_px"`` the area or volume in pixels,
    ``"volume_cubicmicrometres"`` ``volume_um3``, ``"brightness"`` ``mean_intensity``).

    Raises
    ------
    KeyError
        With the columns there are, when none fits; when a physical unit is asked of a table
        measured in pixels, that the calibration is missing and how to give it.

    Examples
    --------
    >>> table = pd.DataFrame({"label": [1], "area_px": [12.0], "mean_intensity": [0.5]})
    >>> find_column(table, "area"), find_column(table, "size_px"), find_column(table, "brightness")
    ('area_px', 'area_px', 'mean_intensity')
    """
    if column in table.columns:
        return column
    base = column.lower().strip().replace(" ", "_")
    for name in (base, *_column_candidates(base)):
        found = _find_named(table, name)
        if found is not None:
            return found
    physical = [c for c in (base, *_column_candidates(base))
                if c.rsplit("_", 1)[-1] in _UNIT_SUFFIX and c.rsplit("_", 1)[-1]
                not in ("px", "px2")]
    if physical:
        # A physical unit asked of a table in pixels: say the calibration is missing, and how
        # to give it, rather than only that a column is absent.
        from tools.calibration import physical_column
        from tools.errors import InputError

        for candidate in physical:
            try:
                physical_column(table, candidate)
            except InputError as exc:
                raise KeyError(str(exc)) from None
    raise KeyError(f"the table has no column {column!r}; its columns: "
                   + ", ".join(map(str, table.columns)))


def column_unit(column: str) -> str:
    """The unit a column name carries: ``area_um2`` -> ``µm²``, ``area_px`` -> ``px``."""
    suffix = column.rsplit("_", 1)[-1] if "_" in column else ""
    unit = _UNIT_SUFFIX.get(suffix, "")
    if unit == "px" and column.startswith(("area", "surface")):
        return "px²"
    if unit == "px" and column.startswith("volume"):
        return "px³"
    return unit


_OPS = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal}


def _evaluate(item: AnswerItem, result: PlanResult, workspace: Workspace,
              plan: Plan) -> AnswerValue:
    if item.variable in result.values:
        value = result.values[item.variable]
        return AnswerValue(item, value, kind="value")
    try:
        artifact = workspace.get(result.artifacts.get(item.variable, item.variable))
    except BiaError as exc:
        raise ToolRunError(f"answer(...): {item.variable}: {exc}", done=result.results) from None
    if item.form == "show":
        if artifact.kind == "table" and isinstance(artifact.data, pd.DataFrame):
            # A shown table is summarised by its size column, so the reply states a number.
            table = artifact.data
            sizes = [c for c in table.columns if str(c).startswith(("area_", "volume_"))]
            calibrated = [c for c in sizes if not str(c).endswith(("_px", "_px2"))]
            column = (calibrated or sizes or [None])[0]
            mean = (float(table[column].mean()) if column is not None and len(table)
                    else None)
            return AnswerValue(item, artifact.name, column=column,
                               unit=column_unit(column) if column else "", n=len(table),
                               kind="table", mean=mean)
        return AnswerValue(item, artifact.name, kind=artifact.kind)
    if item.form == "count" and artifact.kind == "labels":
        n = int(np.unique(artifact.data[artifact.data != 0]).size)
        return AnswerValue(item, n, n=n, kind="labels")
    if artifact.kind != "table":
        raise ToolRunError(f"answer(...): {item.render()} needs a table, but "
                           f"{item.variable} is {_a(artifact.kind)}", done=result.results)
    table = artifact.data
    try:
        if item.where is not None:
            where_column = find_column(table, item.where[0])
            mask = _OPS[item.where[1]](table[where_column].to_numpy(dtype=float),
                                       item.where[2])
            table = table[mask]
        if item.form == "count":
            n = int(table["track_id"].nunique()) if "track_id" in table.columns else len(table)
            return AnswerValue(item, n, n=n, kind="table")
        column = find_column(table, item.column or "")
    except KeyError as exc:
        raise ToolRunError(f"answer(...): {exc.args[0]}", done=result.results) from None
    values = pd.to_numeric(table[column], errors="coerce").dropna().to_numpy(dtype=float)
    if values.size == 0:
        raise ToolRunError(f"answer(...): {item.render()}: no rows with a number in "
                           f"{column!r}" + (" after the filter" if item.where else ""),
                           done=result.results)
    reduce = {"mean": np.mean, "median": np.median, "sum": np.sum, "min": np.min,
              "max": np.max, "std": np.std}[item.form]
    number = float(reduce(values))
    unit = column_unit(column)
    return AnswerValue(item, number, column=column, unit=unit, n=int(values.size), kind="table")


# -- binding ------------------------------------------------------------------------------------


def describe_artifact(artifact: Artifact) -> str:
    """A one-line description of an artifact for a prompt: kind, shape, dtype, axes, size."""
    data = artifact.data
    if artifact.kind == "table" and isinstance(data, pd.DataFrame):
        columns = ", ".join(map(str, data.columns[:12]))
        more = ", ..." if len(data.columns) > 12 else ""
        return f"table, {len(data)} rows, columns {columns}{more}"
    if isinstance(data, np.ndarray):
        shape = "x".join(str(s) for s in data.shape)
        text = f"{artifact.kind} {shape} {data.dtype}"
        if artifact.meta is not None:
            text += f", axes {artifact.meta.axes}"
            px = artifact.meta.pixel_size()
            if px.calibrated:
                text += ", pixel size " + "x".join(f"{s:g}" for s in px.spacing) + f" {px.unit}"
        return text
    return artifact.kind


def bind_artifact(artifact: Artifact, *, name: str | None = None) -> Binding:
    """The :class:`Binding` of a workspace artifact (variable named after it by default)."""
    return Binding(name or python_identifier(artifact.name), artifact.kind, artifact.name,
                   describe_artifact(artifact))


def bind_workspace(workspace: Workspace) -> dict[str, Binding]:
    """Bindings for every artifact in a workspace, by variable name."""
    out: dict[str, Binding] = {}
    for artifact in workspace:
        binding = bind_artifact(artifact)
        out[binding.name] = binding
    return out


def bind_file(workspace: Workspace, path: str) -> Binding:
    """Read the file ``path`` into the workspace and bind it to ``python_identifier(stem)``.

    Raises
    ------
    PathNotAllowedError, ArtifactNotFoundError, ImageFileError
        As :meth:`Workspace.get` does: a path outside the workspace, a missing or unreadable
        file.
    """
    artifact = workspace.get(path)
    stem = path.replace("\\", "/").rsplit("/", 1)[-1].split(".")[0]
    return bind_artifact(artifact, name=python_identifier(stem))


# -- rendering ----------------------------------------------------------------------------------


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _number_text(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else repr(float(number))


def _value_text(value: Any) -> str:
    if isinstance(value, Ref):
        return value.name
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value_text(v) for v in value) + "]"
    return repr(value)


def _render_call(targets: Sequence[str], tool: str, arguments: Mapping[str, Any]) -> str:
    call = f"{tool}({', '.join(f'{k}={_value_text(v)}' for k, v in arguments.items())})"
    return f"{', '.join(targets)} = {call}" if targets else call


def _same(default: Any, value: Any) -> bool:
    try:
        if isinstance(default, float | int) and isinstance(value, float | int):
            return math.isclose(float(default), float(value))
        return bool(default == value)
    except Exception:  # incomparable defaults are simply not equal
        return False
