"""The README's examples work as the README says."""

from __future__ import annotations

import doctest
import re
from pathlib import Path

import numpy as np
import pytest

import tools.registry
from tools.registry import Registry, get_tool

README = Path(__file__).resolve().parent.parent / "README.md"


def test_adding_a_tool_example(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tools.registry, "REGISTRY", Registry())  # keep the global one clean
    text = README.read_text()
    code = re.search(r"### Adding a tool.*?```python\n(.*?)```", text, re.S).group(1)
    namespace: dict[str, object] = {}
    exec(code, namespace)
    sharpen = get_tool(namespace["sharpen"])
    assert tools.registry.REGISTRY.get("sharpen") is sharpen
    radius = sharpen.openai_schema()["function"]["parameters"]["properties"]["radius"]
    assert radius["exclusiveMinimum"] == 0 and "in pixels" in radius["description"]
    line = sharpen.snippet(sharpen.validate({"image": "nuclei"}), ["nuclei_sharpen"])
    assert f"`{line}`" in text
    edge = np.zeros((16, 16), np.float32)
    edge[:, 8:] = 1.0
    assert namespace["sharpen"](edge).max() > 1.0  # overshoot at the edge: it really sharpens
    # A tool written from the README meets the house rule: its Examples section runs.
    finder, runner = doctest.DocTestFinder(), doctest.DocTestRunner()
    examples = finder.find(namespace["sharpen"], "sharpen", globs=dict(namespace))
    assert examples and examples[0].examples
    for test in examples:
        runner.run(test)
    assert runner.summarize(verbose=False).failed == 0


def test_readme_shows_the_two_commands() -> None:
    text = README.read_text()
    assert "make demo" in text and "make test" in text
