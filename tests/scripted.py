"""Helpers for tests that script the chat model: write tool calls, read what the agent stored."""

from __future__ import annotations

import json
import re

from langchain_core.messages import ToolMessage

_STORED = re.compile(r'Stored "([\w.\-]+)"')


def call(name: str, **arguments: object) -> str:
    """The raw text a Qwen model writes for one tool call."""
    return f"<tool_call>\n{json.dumps({'name': name, 'arguments': arguments})}\n</tool_call>"


def last_output(messages: list) -> str:
    """Name of the artifact the last tool result reported as stored."""
    text = str([m for m in messages if isinstance(m, ToolMessage)][-1].content)
    match = _STORED.search(text)
    assert match, text
    return match.group(1)
