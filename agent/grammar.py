"""A GBNF grammar for plans, built from the registry at run time.

The grammar lets a model write only what :func:`agent.plan.parse_plan` reads: lines
``name = tool(param=value, ...)`` where the tool is one of those offered, each parameter is one
of that tool's own (required ones first, always present), each value has the parameter's type
(an artifact parameter takes a variable, a ``Literal`` parameter one of its values, a number a
number), then one ``answer(...)`` line; or the single line ``reply("...")`` for a plain
question. Malformed calls, unknown tools and unknown parameters cannot be written. Which
variables are defined, and their kinds, is left to :meth:`agent.plan.Plan.check` (a
context-free grammar cannot track them cheaply).

llama.cpp reads the text with ``llama_cpp.LlamaGrammar.from_string``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from typing import Any

from agent.plan import STATISTICS
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


def tool_rules(tool_: Tool, *, references: str = "ref") -> list[str]:
    """GBNF rules for calls of one tool; the first rule is the call.

    Parameters
    ----------
    tool_ : Tool
        The tool.
    references : str
        The rule that names a variable.

    Returns
    -------
    list of str
        ``call-<tool> ::= ...`` followed by one rule per parameter.
    """
    props = tool_.parameters_schema()["properties"]
    required, optional = [], []
    rules = []
    for p in tool_.params:
        if p.kind == "pixel_size":
            continue
        value = references if p.kind == "artifact" else _value_rule(props[p.name])
        name = _rule("arg", tool_.name, p.name)
        rules.append(f"{name} ::= {_gbnf_literal(p.name + '=')} ( {value} )")
        (required if p.required else optional).append(name)
    head = _gbnf_literal(f"{tool_.name}(")
    if required:
        body = ' ", " '.join(required)
        if optional:
            body += f' ( ", " ( {" | ".join(optional)} ) )*'
    elif optional:
        any_ = " | ".join(optional)
        body = f'( ( {any_} ) ( ", " ( {any_} ) )* )?'
    else:
        body = ""
    call = f"{_rule('call', tool_.name)} ::= {head} {body} \")\"".replace("  ", " ")
    return [call, *rules]


def _targets_rule(tool_: Tool) -> str:
    n = sum(o.artifact_kind is not None for o in tool_.outputs)
    if n == 0 and tool_.outputs:
        n = 1
    if n == 0:
        return ""
    return ' ", " '.join(["var"] * n) + ' " = "'


def plan_grammar(registry: Registry, tools: Iterable[str] | None = None, *,
                 variables: Sequence[str] = (), allow_reply: bool = True,
                 max_calls: int = MAX_CALLS) -> str:
    """The GBNF text of plans over ``tools`` (all of the registry's by default).

    Parameters
    ----------
    registry : Registry
        Where the tools are described.
    tools : iterable of str, optional
        The tools a plan may call.
    variables : sequence of str
        The bound variables; a reference is one of them or a new name made by an earlier line.
    allow_reply : bool
        Whether the ``reply("...")`` branch (a plain question, no tools) is allowed.
    max_calls : int
        Most calls in a plan.

    Returns
    -------
    str
        Grammar text whose ``root`` rule is a whole plan.

    Examples
    --------
    >>> from agent.toolset import load_registry
    >>> text = plan_grammar(load_registry(), ["threshold_labeling"], variables=["cells"])
    >>> 'call-threshold-labeling ::= "threshold_labeling("' in text
    True
    """
    if max_calls < 1:
        raise ValueError(f"max_calls must be at least 1, got {max_calls}")
    chosen = [registry.get(n) for n in dict.fromkeys(tools)] if tools is not None else list(
        registry)
    rules: list[str] = []
    lines = []
    for tool_ in chosen:
        tool_lines = tool_rules(tool_)
        rules.extend(tool_lines)
        targets = _targets_rule(tool_)
        lines.append(f"{targets} {_rule('call', tool_.name)}".strip())
    line_rule = "line ::= ( " + " | ".join(f"( {x} )" for x in lines) + ' ) "\\n"'
    nested = "line"
    for _ in range(max_calls - 1):
        nested = f"line ( {nested} )?"
    known = " | ".join(_gbnf_literal(v) for v in dict.fromkeys(variables))
    stats = " | ".join(_gbnf_literal(s) for s in STATISTICS)
    root = "root ::= plan" + (" | reply" if allow_reply else "")
    grammar = [
        root,
        f"plan ::= ( {nested} )? answer",
        line_rule,
        'answer ::= "answer(" item ( ", " item )* ")"',
        'item ::= "count(" ref where? ")" | stat "(" ref ", " column where? ")" '
        '| "show(" ref ")"',
        f"stat ::= {stats}",
        'column ::= "\\"" [a-z] [a-z0-9_]* "\\""',
        'where ::= ", where=\\"" [a-z] [a-z0-9_]* " " op " " number "\\""',
        'op ::= "<" | "<=" | ">" | ">="',
        'reply ::= "reply(\\"" [^"\\\\\\n]+ "\\")"',
        f"ref ::= {known + ' | ' if known else ''}var",
        "var ::= [a-z] [a-z0-9_]*",
        'int ::= "-"? [0-9]+',
        'number ::= "-"? [0-9]+ ( "." [0-9]+ )?',
        'bool ::= "True" | "False"',
        'string ::= "\\"" [^"\\\\\\n]* "\\""',
        *rules,
    ]
    return "\n".join(grammar) + "\n"
