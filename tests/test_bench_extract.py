"""Code extraction from model answers and the HumanEval program layout."""

from __future__ import annotations

import ast

import pytest

from evals.extract import build_program, extract_code

PROMPT = 'def add(a, b):\n    """Add two numbers."""\n'


def test_fenced_block_with_prose_around() -> None:
    text = "Sure! Here it is:\n```python\ndef add(a, b):\n    return a + b\n```\nHope it helps."
    assert extract_code(text) == "def add(a, b):\n    return a + b\n"


def test_prefers_block_defining_entry_point() -> None:
    text = ("```python\nprint('usage')\nprint('more usage lines here')\n```\n"
            "```py\ndef add(a, b):\n    return a + b\n```")
    assert "def add" in extract_code(text, "add")


def test_unterminated_fence_is_kept() -> None:
    text = "```python\ndef add(a, b):\n    return a + b\n"
    assert extract_code(text, "add").startswith("def add")


def test_prose_without_fences() -> None:
    text = ("The function is below.\nimport math\ndef add(a, b):\n    return a + b\n\n"
            "This adds the numbers.")
    code = extract_code(text, "add")
    assert code.startswith("import math")
    assert "This adds" not in code
    ast.parse(code)


def test_indented_body_is_a_completion() -> None:
    assert extract_code("    return a + b\n") == "    return a + b\n"


def test_other_language_fences_are_ignored() -> None:
    text = "```bash\npip install x\n```\n```python\ndef add(a, b):\n    return a + b\n```"
    assert "pip" not in extract_code(text)


def test_program_runs_body_and_whole_function() -> None:
    test = "def check(candidate):\n    assert candidate(2, 3) == 5\n"
    for completion in ("    return a + b\n", "def add(a, b):\n    return a + b\n"):
        namespace: dict = {}
        exec(build_program(PROMPT, completion, test, "add"), namespace)
    bad = build_program(PROMPT, "    return a - b\n", test, "add")
    with pytest.raises(AssertionError):
        exec(bad, {})
