"""Helpers for tests that script the chat model: write plans, read what the agent stored."""

from __future__ import annotations

import json


def call(name: str, *, out: str = "", **arguments: object) -> str:
    """One plan line: ``out = name(param=value, ...)``; variables are given as ``Var``.

    Strings are quoted, :class:`Var` values are written bare (a variable reference).
    """
    parts = ", ".join(f"{k}={v if isinstance(v, Var) else json.dumps(v)}"
                      for k, v in arguments.items())
    return f"{out} = {name}({parts})" if out else f"{name}({parts})"


class Var(str):
    """A variable in a scripted plan (written without quotes)."""


def plan(*lines: str) -> str:
    """The text of a plan: its lines joined, the last one ``answer(...)`` or ``reply(...)``."""
    return "\n".join(lines)


def last_output(reply: object) -> str:
    """Name of the last artifact a reply stored."""
    outputs = list(getattr(reply, "outputs", []))
    assert outputs, getattr(reply, "text", reply)
    return outputs[-1]
