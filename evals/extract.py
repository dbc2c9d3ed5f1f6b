"""Pull the Python code out of a language model's answer: fences, prose, truncation."""

from __future__ import annotations

import ast
import re

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
_CODE_START = re.compile(r"^(\s+\S|def |async def |class |import |from |@|#|if |for |while |"
                         r"return\b|[A-Za-z_][A-Za-z0-9_]*\s*(=|\())")


def _parses(code: str) -> bool:
    try:
        ast.parse(code)
    except (SyntaxError, ValueError):
        return False
    return True


def _longest_parsing_prefix(lines: list[str]) -> str:
    for end in range(len(lines), 0, -1):
        candidate = "\n".join(lines[:end]).rstrip()
        if candidate and _parses(candidate):
            return candidate + "\n"
    return "\n".join(lines).rstrip() + "\n"


def extract_code(text: str, entry_point: str | None = None) -> str:
    """The code in ``text``: a fenced block, else the code-looking part of the prose.

    Parameters
    ----------
    text : str
        A model's answer.
    entry_point : str, optional
        The function the task asks for; a fenced block that defines it is preferred.

    Returns
    -------
    str
        Python source (possibly an indented function body, as HumanEval completions are).
        Prose before and after the code is dropped; an unterminated fence (a truncated answer)
        yields everything after it.
    """
    if not isinstance(text, str):
        raise TypeError(f"expected the model's answer as text, got {type(text).__name__}")
    blocks = [
        body for lang, body in _FENCE.findall(text)
        if lang.lower() in ("", "python", "py", "python3")
    ]
    if blocks:
        if entry_point:
            defining = [b for b in blocks if re.search(rf"def\s+{re.escape(entry_point)}\s*\(", b)]
            if defining:
                return defining[0].rstrip() + "\n"
        return max(blocks, key=len).rstrip() + "\n"
    lines = text.splitlines()
    if lines and all(not line.strip() or line.startswith((" ", "\t")) for line in lines):
        return text.rstrip() + "\n"  # a bare, indented function body
    start = next((i for i, line in enumerate(lines) if _CODE_START.match(line)), None)
    if start is None:
        return text.strip() + "\n"
    return _longest_parsing_prefix(lines[start:])


def build_program(prompt: str, completion: str, test: str, entry_point: str) -> str:
    """The program HumanEval runs: prompt, completion, tests and ``check(entry_point)``.

    A completion that defines the whole function (as chat models answer) is placed after the
    prompt, whose docstring-only function it then replaces.
    """
    body = completion if completion.startswith((" ", "\t")) or not completion.strip() else (
        "\n" + completion
    )
    return f"{prompt}{body}\n\n{test}\n\ncheck({entry_point})\n"
