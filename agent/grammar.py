"""A GBNF grammar for plans, built from the registry at run time.

The grammar lets a model write only what :func:`agent.plan.parse_plan` reads: lines
``labels1 = tool(param=value, ...)`` where the tool is one of those offered, each parameter is
one of that tool's own (required ones first, always present), each value has the parameter's
type (a ``Literal`` parameter one of its values, a number a number), then one ``answer(...)``
line; or the single line ``reply("...")`` for a plain question.

New variables are named by kind and line (``image1``, ``labels2``, ``table3``), so the grammar
knows at each line which variables exist and of which kind: an artifact parameter takes only
variables defined above it of a kind it accepts (an intensity image cannot be written where
labels are expected), and ``answer(...)`` counts only labels or tables. Malformed calls, unknown
tools and parameters, undefined variables and wrong kinds cannot be written; what is left to
:meth:`agent.plan.Plan.check` is argument bounds and unused variables.

llama.cpp reads the text with ``llama_cpp.LlamaGrammar.from_string``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from agent.plan import STATISTICS, makes_labels_from_images, output_kinds
from tools.registry import Registry, Tool

MAX_CALLS = 8
"""Most tool calls a plan may have."""

_RULE = re.compile(r"[^a-z0-9-]")


def _rule(*parts: str) -> str:
    return "-".join(_RULE.sub("-", p.lower().replace("_", "-")) for p in parts)


def _gbnf_literal(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _value_rule(prop: dict[str, Any]) -> str:
    """The grammar of one literal value from its JSON schema."""
    if "enum" in prop:
        return " | ".join(_gbnf_literal(json.dumps(v) if isinstance(v, str) else repr(v))
                          for v in prop["enum"])
    if "anyOf" in prop:
        return " | ".join(f"( {_value_rule(o)} )" for o in prop["anyOf"])
    kind = prop.get("type")
    if kind == "integer":
        return "int"
    if kind == "number":
        return "number"
    if kind == "boolean":
        return "bool"
    if kind == "string":
        return "string"
    if kind == "array":
        items = prop.get("items", {})
        item = _value_rule(items) if isinstance(items, dict) and items else "number"
        return f'"[" ( {item} ) ( ", " ( {item} ) )* "]"'
    return "number | string | bool"


def _alternatives(names: Sequence[str]) -> str:
    return " | ".join(_gbnf_literal(n) for n in dict.fromkeys(names))


_REF_KINDS = {"image": ("image", "labels"), "labels": ("labels",), "table": ("table",),
              "intensity": ("image",)}


def new_names(tool_: Tool, line: int) -> list[str]:
    """The variables line ``line`` assigns a call of ``tool_`` to: ``labels2``, ``table3``.

    Examples
    --------
    >>> from agent.toolset import load_registry
    >>> new_names(load_registry().get("measure_objects"), 3)
    ['table3']
    """
    names, seen = [], {}
    for kind in output_kinds(tool_):
        base = "result" if kind == "value" else kind
        seen[base] = seen.get(base, 0) + 1
        names.append(f"{base}{line}" + (f"_{seen[base]}" if seen[base] > 1 else ""))
    return names


def _arguments(tool_: Any, ref: Callable[[str], str | None],
               prefix: str) -> tuple[str, list[str]]:
    """The argument list of one tool's call and the rules it needs.

    An artifact parameter with no variable of its kind defined yet is left out (optional) —
    a rule that matches nothing would leave the model no token to write.
    """
    props = tool_.parameters_schema()["properties"]
    required, optional, rules = [], [], []
    for p in tool_.params:
        if p.kind == "pixel_size":
            continue
        if p.kind == "artifact":
            kind = p.artifact_kind or "image"
            if kind == "image" and makes_labels_from_images(getattr(tool_, "_tool", tool_)):
                kind = "intensity"  # a segmenter is not given a label image
            found = ref(kind)
            if found is None:
                continue
            value = found
            name = _rule(prefix, "arg", tool_.name, p.name)
        else:
            value = _value_rule(props[p.name])
            name = _rule("arg", tool_.name, p.name)
        rules.append(f"{name} ::= {_gbnf_literal(p.name + '=')} ( {value} )")
        (required if p.required else optional).append(name)
    # Optional parameters in their declared order, each at most once: a repeatable list let
    # the model write `axes="ZYX"` until it ran out of tokens.
    def tail(start: int) -> str:
        return " ".join(f'( ", " {o} )?' for o in optional[start:])

    if required:
        body = ' ", " '.join(required) + (" " + tail(0) if optional else "")
    elif optional:
        body = "( " + " | ".join(f"{o} {tail(i + 1)}".strip()
                                 for i, o in enumerate(optional)) + " )?"
    else:
        body = ""
    return body, rules


def plan_grammar(registry: Registry, tools: Iterable[str] | None = None, *,
                 variables: Mapping[str, str] | Sequence[str] = (), allow_reply: bool = True,
                 max_calls: int = MAX_CALLS,
                 parameters: Callable[[Tool], Iterable[str]] | None = None,
                 first: Iterable[str] | None = None, inputs: Iterable[str] = (),
                 statistic: bool = False, reply_only: bool = False,
                 statistics: Sequence[str] | None = None) -> str:
    """The GBNF text of plans over ``tools`` (all of the registry's by default).

    Parameters
    ----------
    registry : Registry
        Where the tools are described.
    tools : iterable of str, optional
        The tools a plan may call.
    variables : mapping of str to str, or sequence of str
        The bound variables and their kinds (a plain sequence counts as images).
    allow_reply : bool
        Whether the ``reply("...")`` branch (a plain question, no tools) is allowed.
    max_calls : int
        Most calls in a plan.
    parameters : callable, optional
        ``parameters(tool)`` gives the optional value parameters a plan may set for that
        tool (all by default); required and artifact parameters are always allowed.
    first : iterable of str, optional
        The tools the plan's first line must call (a request that begins "Denoise x.tif,
        then ..." must begin with a denoiser); the plan then has at least one line.
    inputs : iterable of str
        Variables read from the request's own files: ``show(...)`` may not name them, since
        showing a user their file back answers nothing.
    statistic : bool
        The answer must include a column statistic (``mean(table, "area")`` ...): the request
        asks for one.
    reply_only : bool
        Only the ``reply("...")`` branch: a question about concepts, not data.
    statistics : sequence of str, optional
        The column statistics the answer may use (all of :data:`agent.plan.STATISTICS` by
        default): a request that asks for a median gets a median, not a sum.

    Returns
    -------
    str
        Grammar text whose ``root`` rule is a whole plan.

    Examples
    --------
    >>> from agent.toolset import load_registry
    >>> text = plan_grammar(load_registry(), ["threshold_labeling"], variables={"cells": "image"})
    >>> 'l1-call-threshold-labeling ::= "threshold_labeling("' in text
    True
    """
    if max_calls < 1:
        raise ValueError(f"max_calls must be at least 1, got {max_calls}")
    kinds = dict(variables) if isinstance(variables, Mapping) else {
        v: "image" for v in variables}
    chosen = [registry.get(n) for n in dict.fromkeys(tools)] if tools is not None else list(
        registry)
    opening = set(first) & {t.name for t in chosen} if first is not None else set()
    rules: dict[str, str] = {}
    defined: list[tuple[str, str]] = list(kinds.items())  # (name, kind) known before a line
    made_by_line: list[list[tuple[str, str]]] = []
    plan_parts = []
    for line in range(1, max_calls + 1):
        known = defined + [pair for made in made_by_line for pair in made]

        def ref(kind: str, known: list[tuple[str, str]] = known,
                line: int = line) -> str | None:
            accepted = _REF_KINDS.get(kind)
            names = [n for n, k in known if accepted is None or k in accepted]
            if not names:
                return None
            rule = _rule(f"l{line}", "ref", kind)
            rules[rule] = f"{rule} ::= {_alternatives(names)}"
            return rule

        alternatives = []
        made_here: list[tuple[str, str]] = []
        for tool_ in chosen:
            if line == 1 and opening and tool_.name not in opening:
                continue
            usable = list(_usable(tool_, known))
            if not usable:
                continue  # an artifact parameter with nothing of its kind defined yet
            allowed = set(parameters(tool_)) if parameters is not None else None
            trimmed = _trim(tool_, allowed)
            body, needed = _arguments(trimmed, ref, f"l{line}")
            for rule_text in needed:
                rules.setdefault(rule_text.split(" ::= ")[0], rule_text)
            call = _rule(f"l{line}", "call", tool_.name)
            rules[call] = f'{call} ::= {_gbnf_literal(tool_.name + "(")} {body} ")"'.replace(
                "  ", " ")
            targets = new_names(tool_, line)
            made_here += list(zip(targets, output_kinds(tool_), strict=True))
            assign = ' ", " '.join(_gbnf_literal(t) for t in targets)
            alternatives.append(f'( {assign} " = " {call} )' if targets else f"( {call} )")
        if not alternatives:
            break
        rules[f"line-{line}"] = (f"line-{line} ::= ( " + " | ".join(alternatives)
                                 + ' ) "\\n"')
        made_by_line.append(made_here)
        plan_parts.append(line)
    def answers(statistic: bool) -> list[bool]:
        out = []
        for count in range(len(plan_parts) + 1):
            known = defined + [pair for made in made_by_line[:count] for pair in made]
            out.append(_answer_rules(rules, count, known, hidden=set(inputs),
                                     statistic=statistic))
        return out

    answerable = answers(statistic)
    if statistic and not any(answerable):
        answerable = answers(False)  # no table can be made here: any answer will do
    # plan ::= answer-0 | line-1 ( answer-1 | line-2 ( answer-2 | ... ) )
    nested = ""
    for count in range(len(plan_parts), -1, -1):
        options = [f"answer-{count}"] if answerable[count] and (count or not opening) else []
        if nested:
            options.append(nested)
        if not options:
            nested = ""  # a line after which no answer can follow is not offered
            continue
        inner = " | ".join(options)
        nested = f"line-{count} ( {inner} )" if count else inner
    if not nested and not allow_reply:
        raise ValueError("no plan can be written: no variables and no tool without inputs")
    plan_rule = f"plan ::= {nested}" if nested else ""
    stats = " | ".join(_gbnf_literal(s) for s in (statistics or STATISTICS))
    if reply_only:
        plan_rule = ""
    root = "root ::= " + " | ".join(
        (["plan"] if plan_rule else []) + (["reply"] if allow_reply or reply_only else []))
    grammar = [
        root,
        *([plan_rule] if plan_rule else []),
        f"stat ::= {stats}",
        'column ::= "\\"" [a-z] [a-z0-9_]* "\\""',
        'where ::= ", where=\\"" [a-z] [a-z0-9_]* " " op " " number "\\""',
        'op ::= "<" | "<=" | ">" | ">="',
        'reply ::= "reply(\\"" [^"\\\\\\n]+ "\\")"',
        'int ::= "-"? [0-9]+',
        'number ::= "-"? [0-9]+ ( "." [0-9]+ )?',
        'bool ::= "True" | "False"',
        'string ::= "\\"" [^"\\\\\\n]* "\\""',
        *rules.values(),
    ]
    return "\n".join(grammar) + "\n"


def usable(tool_: Tool, known: Sequence[tuple[str, str]]) -> bool:
    """Whether ``tool_`` can be called on the variables ``known`` (``(name, kind)`` pairs):
    every required artifact parameter has a variable of a kind it accepts."""
    return bool(list(_usable(tool_, known)))


def _usable(tool_: Tool, known: Sequence[tuple[str, str]]) -> Iterable[str]:
    """Yields once when every required artifact parameter has a variable of its kind."""
    for p in tool_.params:
        if p.kind == "artifact" and p.required:
            kind = p.artifact_kind or "image"
            if kind == "image" and makes_labels_from_images(tool_):
                kind = "intensity"  # as in _arguments: a label image is no segmenter input
            accepted = _REF_KINDS.get(kind)
            if not any(accepted is None or k in accepted for _, k in known):
                return
    yield tool_.name


class _Trimmed:
    """A tool seen through a filter on its optional value parameters."""

    def __init__(self, tool_: Tool, allowed: set[str] | None) -> None:
        self.name = tool_.name
        self.params = [p for p in tool_.params if allowed is None or p.required
                       or p.kind != "value" or p.name in allowed]
        self._tool = tool_

    def parameters_schema(self) -> dict[str, Any]:
        return self._tool.parameters_schema()


def _trim(tool_: Tool, allowed: set[str] | None) -> Any:
    return _Trimmed(tool_, allowed)


MAX_ANSWERS = 4
"""Most values one ``answer(...)`` may name."""


def _answer_rules(rules: dict[str, str], count: int, known: Sequence[tuple[str, str]], *,
                  hidden: set[str] = frozenset(),  # type: ignore[assignment]
                  statistic: bool = False) -> bool:
    """``answer-<count>``: the answer after ``count`` lines, over the variables known then.

    With ``statistic``, one of the values must be a column statistic (the request asks for a
    mean, median, total or spread), so there is no answer before a table exists.

    Returns whether there is anything to answer with (no variables: no answer rule).
    """
    def names(*wanted: str) -> list[str]:
        return [n for n, k in known if not wanted or k in wanted]

    labels = names("labels")
    tables = names("table")
    every = [n for n in names() if n not in hidden]
    items = []
    if labels:
        items.append(f'"count(" ( {_alternatives(labels)} ) ")"')
    if tables:
        items.append(f'"count(" ( {_alternatives(tables)} ) where? ")"')
    if tables:
        items.append(f'stat "(" ( {_alternatives(tables)} ) ", " column where? ")"')
    if every:
        items.append(f'"show(" ( {_alternatives(every)} ) ")"')
    if not items or (statistic and not tables):
        return False
    item = f"item-{count}"
    rules[item] = f"{item} ::= " + " | ".join(items)
    rule = f"answer-{count}"
    more = " ".join(f'( ", " {item} )?' for _ in range(MAX_ANSWERS - 1))
    if statistic:
        # Bounded, and the statistic after at most one other value ("count them and give
        # their mean area"): an unbounded list let the model repeat count(...) until the
        # token limit.
        stat_item = f'stat "(" ( {_alternatives(tables)} ) ", " column where? ")"'
        rules[rule] = (f'{rule} ::= "answer(" ( {item} ", " )? {stat_item} '
                       + " ".join(f'( ", " {item} )?' for _ in range(MAX_ANSWERS - 2)) + ' ")"')
    else:
        rules[rule] = f'{rule} ::= "answer(" {item} {more} ")"'
    return True
