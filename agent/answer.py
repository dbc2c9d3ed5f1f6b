"""The reply's words: the asked number with its unit and the method, or a cited plain answer.

A plan's answer values (:class:`agent.plan.AnswerValue`) become one sentence each, e.g.
``64 blobs (voronoi_otsu_labeling, spot_sigma 3.1: estimated: objects about 14 px across)``
or ``Mean area: 352.1 px² over 64 objects (measure_objects).`` The method is the chain of
tools that made the answered variable, with the choices a tool recorded for itself
(``ToolResult.choices``, see :mod:`tools.choices`) when it made any.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from agent.plan import AnswerValue, Plan, PlanResult, Ref
from tools.registry import ToolResult

_OBJECT_WORDS = (
    "nuclei", "nucleus", "cells", "cell", "blobs", "blob", "spots", "spot", "particles",
    "particle", "objects", "object", "puncta", "vesicles", "organoids", "colonies", "beads",
    "droplets", "foci", "tracks", "track", "islands", "grains", "bacteria", "embryos",
)
_SINGULAR = {"nuclei": "nucleus", "cells": "cell", "blobs": "blob", "spots": "spot",
             "particles": "particle", "objects": "object", "tracks": "track",
             "vesicles": "vesicle", "organoids": "organoid", "colonies": "colony",
             "beads": "bead", "droplets": "droplet", "islands": "island", "grains": "grain",
             "embryos": "embryo"}
_PLURAL = {v: k for k, v in _SINGULAR.items()} | {"bacteria": "bacteria", "puncta": "puncta",
                                                   "foci": "foci"}
_WORD = re.compile(r"[a-z]+")


def object_word(request: str, *, n: int | None = None, tracks: bool = False) -> str:
    """The word the user used for the objects ("nuclei", "cells"), "objects" by default.

    Examples
    --------
    >>> object_word("How many nuclei are in a.tif?", n=1)
    'nucleus'
    >>> object_word("count things in a.tif", n=3)
    'objects'
    """
    found = next((w for w in _WORD.findall(request.lower()) if w in _OBJECT_WORDS), None)
    if tracks and found not in ("tracks", "track"):
        found = "tracks"
    base = _PLURAL.get(found or "objects", found or "objects")
    if n == 1:
        return _SINGULAR.get(base, base)
    return base


def format_number(value: float) -> str:
    """A number as a person reads it: integers plain, others with 4 significant digits."""
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}".replace(",", " ") if abs(value) >= 10000 else str(int(value))
    return f"{value:.4g}" if abs(value) >= 1e-3 else f"{value:.3g}"


def _choices_text(choices: Mapping[str, Any] | None) -> str:
    """``spot sigma 1.8, outline sigma 1.1 (estimated: objects about 9 px across)``: values
    that share a reason are listed before it once, not each with its own copy."""
    if not choices:
        return ""
    groups: dict[str, list[str]] = {}
    for parameter, entry in choices.items():
        value = entry.get("value") if isinstance(entry, Mapping) else entry
        reason = entry.get("reason", "") if isinstance(entry, Mapping) else ""
        shown = format_number(value) if isinstance(value, int | float) and not isinstance(
            value, bool) else str(value)
        groups.setdefault(str(reason), []).append(f"{parameter.replace('_', ' ')} {shown}")
    return "; ".join(", ".join(values) + (f" ({reason})" if reason else "")
                     for reason, values in groups.items())


def method_text(result: ToolResult) -> str:
    """One call as the method of an answer: the tool and what it chose for itself."""
    choices = _choices_text(getattr(result, "choices", None))
    return f"{result.tool}" + (f": {choices}" if choices else "")


def lineage(plan: Plan, run: PlanResult, variable: str) -> list[ToolResult]:
    """The calls that made ``variable``, earliest first (its inputs' makers included)."""
    maker: dict[str, int] = {}
    for index, call in enumerate(plan.calls):
        for target in call.targets:
            maker[target] = index
    chain: list[int] = []
    todo = [variable]
    while todo:
        name = todo.pop()
        index = maker.get(name)
        if index is None or index in chain or index >= len(run.results):
            continue
        chain.append(index)
        todo.extend(v.name for v in plan.calls[index].arguments.values() if isinstance(v, Ref))
    return [run.results[i] for i in sorted(chain)]


def _segmenting(chain: Sequence[ToolResult]) -> ToolResult | None:
    """The call that made the objects: the last one that stored labels from no labels."""
    for result in reversed(chain):
        if any(o.endswith("labels") for o in result.outputs) or "labels" in result.tool \
                or "segment" in result.tool:
            return result
    return chain[-1] if chain else None


def value_sentence(value: AnswerValue, *, request: str, plan: Plan, run: PlanResult) -> str:
    """One answer value as a sentence with its unit and method."""
    item = value.item
    chain = lineage(plan, run, item.variable)
    methods = [method_text(r) for r in chain]
    method = f" ({', '.join(methods)})" if methods else ""
    where = ""
    if item.where is not None:
        column, op, number = item.where
        where = f" with {column} {op} {format_number(number)}"
    if item.form == "count":
        n = int(value.value)
        noun = object_word(request, n=n, tracks=value.kind == "table" and any(
            r.tool.startswith("track") for r in chain))
        return f"{n} {noun}{where}{method}."
    if item.form == "show":
        if value.kind == "value":
            return f"{item.variable}: {_show_value(value.value)}{method}."
        if value.kind == "table" and value.mean is not None and value.column:
            what = value.column.rsplit("_", 1)[0].replace("_", " ")
            noun = object_word(request, n=value.n)
            unit = f" {value.unit}" if value.unit else ""
            return (f"{value.n} {noun} measured, mean {what} {format_number(value.mean)}{unit}; "
                    f"the table is stored as {value.value!r}{method}.")
        return f"{item.variable} is stored as {value.value!r}{method}."
    unit = f" {value.unit}" if value.unit else ""
    label = {"mean": "Mean", "median": "Median", "sum": "Total", "min": "Smallest",
             "max": "Largest", "std": "Standard deviation of"}[item.form]
    column = value.column or item.column or ""
    what = column.replace("_", " ")
    if value.unit:
        base = column.rsplit("_", 1)[0]
        what = base.replace("_", " ")
    noun = object_word(request, n=value.n)
    return (f"{label} {what}: {format_number(float(value.value))}{unit} over {value.n} "
            f"{noun}{where}{method}.")


def _show_value(value: Any) -> str:
    from tools.registry import summarize_value

    if isinstance(value, float | int) and not isinstance(value, bool):
        return format_number(value)
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {_show_value(v)}" for k, v in value.items())
    return summarize_value(value)


def answer_text(*, request: str, plan: Plan, run: PlanResult) -> str:
    """The reply to a plan that ran: one sentence per answer value."""
    sentences = [value_sentence(v, request=request, plan=plan, run=run) for v in run.answers]
    text = " ".join(sentences)
    return text[0].upper() + text[1:] if text else "Done."


def reply_text(text: str, hits: Sequence[Any]) -> str:
    """A plain answer, citing the retrieved passages it was written from.

    The model wrote ``text`` with the numbered passages in front of it; when it cites none, the
    first is cited, as it is what the answer was retrieved from. Without passages the answer
    says it is the model's own.
    """
    text = text.strip()
    if not hits:
        return ("Nothing relevant was found in bia's documentation; this answer is the "
                f"model's own.\n\n{text}")
    if not re.search(r"\[\d+\]", text):
        text += " [1]"
    return text


def cited_hits(text: str, hits: Sequence[Any]) -> list[Any]:
    """The passages the text cites as [n] (all of them when it cites none)."""
    cited = sorted({int(n) for n in re.findall(r"\[(\d+)\]", text)})
    return [hits[n - 1] for n in cited if 1 <= n <= len(hits)] or list(hits)
