"""Read and write problems and samples in the HumanEval JSONL format, keeping bad lines visible.

A problem has ``task_id``, ``prompt``, ``canonical_solution``, ``entry_point`` and ``test``; a
sample has ``task_id`` and ``completion``. Broken input never stops a run: every malformed line,
missing field or unknown task id becomes an :class:`InputIssue` that the runner records as an
``invalid`` result, so a score is never computed over silently dropped samples.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from tools.errors import InputError

PROBLEM_FIELDS = ("task_id", "prompt", "canonical_solution", "entry_point", "test")
SAMPLE_FIELDS = ("task_id", "completion")


@dataclass(frozen=True)
class Problem:
    """One task: a prompt to complete, its reference solution and its tests."""

    task_id: str
    prompt: str
    canonical_solution: str
    entry_point: str
    test: str


@dataclass(frozen=True)
class Sample:
    """One completion of one task; ``index`` tells repeated samples of a task apart."""

    task_id: str
    completion: str
    index: int
    line: int = 0


@dataclass(frozen=True)
class InputIssue:
    """A line that could not be used, and why."""

    source: str
    line: int
    problem: str
    task_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready record."""
        return {"source": self.source, "line": self.line, "problem": self.problem,
                "task_id": self.task_id}


def _open_text(path: Path) -> TextIO:
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace")


def iter_jsonl(path: str | os.PathLike[str]) -> Iterator[tuple[int, Any, str | None]]:
    """Yield ``(line number, parsed value, problem)`` for each non-empty line of a JSONL file.

    ``problem`` is None for a line that parsed, else a description and the value is None.
    """
    path = Path(path)
    with _open_text(path) as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield number, json.loads(line), None
            except json.JSONDecodeError as exc:
                yield number, None, f"not valid JSON ({exc.msg} at column {exc.colno})"


def _check_fields(value: Any, fields: Iterable[str]) -> str | None:
    if not isinstance(value, dict):
        return f"expected a JSON object, got {type(value).__name__}"
    missing = [f for f in fields if f not in value]
    if missing:
        return "missing field" + ("s " if len(missing) > 1 else " ") + ", ".join(missing)
    wrong = [f for f in fields if not isinstance(value[f], str)]
    if wrong:
        return "field" + ("s " if len(wrong) > 1 else " ") + ", ".join(wrong) + " must be text"
    return None


def read_problems(path: str | os.PathLike[str]) -> tuple[dict[str, Problem], list[InputIssue]]:
    """Problems by task id, and the lines that could not be used.

    Raises
    ------
    InputError
        When the file does not exist or holds no usable problem at all.
    """
    problems: dict[str, Problem] = {}
    issues: list[InputIssue] = []
    source = str(path)
    for number, value, problem in iter_jsonl(path):
        problem = problem or _check_fields(value, PROBLEM_FIELDS)
        task_id = value.get("task_id") if isinstance(value, dict) else None
        if problem is None and value["task_id"] in problems:
            problem = f"duplicate task_id {value['task_id']!r}"
        if problem is None and not value["entry_point"].isidentifier():
            problem = f"entry_point {value['entry_point']!r} is not a Python name"
        if problem:
            issues.append(InputIssue(source, number, problem,
                                     task_id if isinstance(task_id, str) else None))
            continue
        problems[value["task_id"]] = Problem(**{f: value[f] for f in PROBLEM_FIELDS})
    if not problems:
        raise InputError(f"{source}: no usable problem ({len(issues)} bad lines)")
    return problems, issues


def read_samples(
    path: str | os.PathLike[str], problems: dict[str, Problem]
) -> tuple[list[Sample], list[InputIssue]]:
    """Samples in file order, numbered per task, and the lines that could not be used.

    A sample whose ``task_id`` is not among ``problems`` is an issue, not a sample.
    """
    samples: list[Sample] = []
    issues: list[InputIssue] = []
    seen: dict[str, int] = {}
    source = str(path)
    for number, value, problem in iter_jsonl(path):
        problem = problem or _check_fields(value, SAMPLE_FIELDS)
        task_id = value.get("task_id") if isinstance(value, dict) else None
        if problem is None and value["task_id"] not in problems:
            problem = f"unknown task_id {value['task_id']!r}"
        if problem:
            issues.append(InputIssue(source, number, problem,
                                     task_id if isinstance(task_id, str) else None))
            continue
        index = seen.get(task_id, 0)
        seen[task_id] = index + 1
        samples.append(Sample(task_id, value["completion"], index, number))
    return samples, issues


def write_jsonl(path: str | os.PathLike[str], records: Iterable[dict[str, Any]]) -> int:
    """Write records one per line; returns how many."""
    count = 0
    with open(path, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    return count


def canonical_samples(problems: dict[str, Problem]) -> list[Sample]:
    """One sample per problem whose completion is the canonical solution."""
    return [Sample(p.task_id, p.canonical_solution, 0) for p in problems.values()]


DEFAULT_PROBLEMS = Path(__file__).resolve().parent / "data" / "bia_humaneval.jsonl"
"""The bio-image-analysis tasks shipped with bia."""
