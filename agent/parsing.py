"""Read tool calls out of a local model's text.

Qwen2.5 chat templates ask the model to answer a tool call as::

    <tool_call>
    {"name": "denoise_nlm", "arguments": {"image": "cells.tif"}}
    </tool_call>

Small models sometimes write the same object in a fenced ```json block or as the whole reply
instead. All three are accepted. Anything that looks like a call but cannot be read becomes an
:class:`InvalidCall` carrying the reason, so the loop can send that reason back to the model.
"""

from __future__ import annotations

import ast
import contextlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

_TOOL_CALL_BLOCK = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL)
_FENCE = re.compile(r"```[ \t]*(?:json|JSON|tool_call)?[ \t]*\n(.*?)```", re.DOTALL)


@dataclass(frozen=True)
class ParsedCall:
    """A tool call read from text: a name and its arguments (not yet validated)."""

    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class InvalidCall:
    """Text that was meant as a tool call but could not be read, and why."""

    raw: str
    error: str


@dataclass
class ParsedReply:
    """A model's reply split into plain text and tool calls."""

    text: str
    calls: list[ParsedCall] = field(default_factory=list)
    invalid: list[InvalidCall] = field(default_factory=list)


def _load_object(raw: str) -> Any:
    """JSON, else JSON with missing closing braces added, else a Python literal.

    Small models drop the last ``}`` of a nested object, write single quotes, or double the
    braces as in a template (``{{"name": ...}}}}``, seen from the 1.5B model).
    """
    try:
        return json.loads(raw)
    except json.JSONDecodeError as first:
        stripped = raw.strip()
        if stripped.startswith("{{"):
            inner = stripped[1:]
            extra = inner.count("}") - inner.count("{")
            if extra > 0 and inner.endswith("}" * extra):
                with contextlib.suppress(json.JSONDecodeError):
                    return json.loads(inner[:-extra])
        missing = raw.count("{") - raw.count("}")
        if 0 < missing <= 3:
            try:
                return json.loads(raw + "}" * missing)
            except json.JSONDecodeError:
                pass
        try:
            return ast.literal_eval(raw)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            raise first from None


def _load_objects(raw: str) -> list[Any]:
    """One JSON value, or several written one after another (one call per line)."""
    try:
        return [_load_object(raw)]
    except json.JSONDecodeError as first:
        decoder = json.JSONDecoder()
        values, pos = [], 0
        while pos < len(raw):
            while pos < len(raw) and raw[pos] in " \t\r\n,":
                pos += 1
            if pos >= len(raw):
                break
            try:
                value, pos = decoder.raw_decode(raw, pos)
            except json.JSONDecodeError:
                rest = raw[pos:]
                if not values:
                    raise first from None
                # A last object missing its braces is repaired; one cut off at the token limit
                # is ignored, and the complete calls before it stand.
                with contextlib.suppress(json.JSONDecodeError):
                    values.append(_load_object(rest))
                break
            values.append(value)
        return values


def _as_calls(obj: Any, raw: str) -> tuple[list[ParsedCall], list[InvalidCall]]:
    items = obj if isinstance(obj, list) else [obj]
    calls: list[ParsedCall] = []
    invalid: list[InvalidCall] = []
    for item in items:
        if isinstance(item, dict) and "function" in item and isinstance(item["function"], dict):
            item = item["function"]  # OpenAI's {"type": "function", "function": {...}}
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            invalid.append(InvalidCall(raw, 'a tool call must be a JSON object with a "name" '
                                            'string and an "arguments" object'))
            continue
        args: Any = item.get("arguments", item.get("parameters", {}))
        if isinstance(args, str):
            try:
                args = _load_object(args) if args.strip() else {}
            except json.JSONDecodeError as exc:
                invalid.append(InvalidCall(raw, f"the arguments of {item['name']!r} are not "
                                                f"valid JSON ({exc.msg})"))
                continue
        if args is None:
            args = {}
        if not isinstance(args, dict):
            invalid.append(InvalidCall(raw, f'"arguments" of {item["name"]!r} must be a JSON '
                                            f"object, got {type(args).__name__}"))
            continue
        calls.append(ParsedCall(item["name"].strip(), args))
    return calls, invalid


def _flatten(values: list[Any]) -> list[Any]:
    out: list[Any] = []
    for value in values:
        out.extend(value if isinstance(value, list) else [value])
    return out


def _dedupe(calls: list[ParsedCall]) -> list[ParsedCall]:
    """Drop repeats of the same call: small models sometimes loop on one line."""
    seen: list[ParsedCall] = []
    for c in calls:
        if c not in seen:
            seen.append(c)
    return seen


def _looks_like_call(raw: str) -> bool:
    return '"name"' in raw or "'name'" in raw


def parse_reply(text: str) -> ParsedReply:
    """Split a model's text into its prose and the tool calls it makes.

    Parameters
    ----------
    text : str
        The raw generated text.

    Returns
    -------
    ParsedReply
        ``text`` without the call blocks, the calls that could be read, and the ones that could
        not (with the reason).
    """
    calls: list[ParsedCall] = []
    invalid: list[InvalidCall] = []
    remaining = text
    blocks = list(_TOOL_CALL_BLOCK.finditer(text))
    if blocks:
        for match in blocks:
            raw = match.group(1).strip()
            if raw.startswith("```"):
                raw = raw.strip("`").removeprefix("json").strip()
            try:
                obj = _load_objects(raw)
            except json.JSONDecodeError as exc:
                invalid.append(InvalidCall(raw, f"the tool call is not valid JSON ({exc.msg} at "
                                                f"character {exc.pos})"))
                continue
            found, bad = _as_calls(_flatten(obj), raw)
            calls += found
            invalid += bad
        remaining = _TOOL_CALL_BLOCK.sub("", text)
        return ParsedReply(remaining.strip(), _dedupe(calls), invalid)
    for match in _FENCE.finditer(text):
        raw = match.group(1).strip()
        if not _looks_like_call(raw):
            continue
        try:
            obj = _load_objects(raw)
        except json.JSONDecodeError as exc:
            invalid.append(InvalidCall(raw, f"the tool call is not valid JSON ({exc.msg})"))
            remaining = remaining.replace(match.group(0), "")
            continue
        found, bad = _as_calls(_flatten(obj), raw)
        if found or bad:
            calls += found
            invalid += bad
            remaining = remaining.replace(match.group(0), "")
    if calls or invalid:
        return ParsedReply(remaining.strip(), _dedupe(calls), invalid)
    stripped = text.strip()
    if stripped.startswith(("{", "[")) and _looks_like_call(stripped):
        try:
            obj = _load_objects(stripped)
        except json.JSONDecodeError as exc:
            return ParsedReply("", [], [InvalidCall(stripped, f"the tool call is not valid JSON "
                                                              f"({exc.msg})")])
        found, bad = _as_calls(_flatten(obj), stripped)
        if found or bad:
            return ParsedReply("", _dedupe(found), bad)
    return ParsedReply(stripped)
