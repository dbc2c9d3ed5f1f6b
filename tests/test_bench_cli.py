"""``bia bench`` from the command line."""

from __future__ import annotations

import json
from pathlib import Path

from agent.cli import main


def _problems(path: Path, solution: str) -> Path:
    path.write_text(json.dumps({
        "task_id": "T/0", "prompt": "def inc(x):\n", "canonical_solution": solution,
        "entry_point": "inc", "test": "def check(f):\n    assert f(1) == 2\n"}) + "\n")
    return path


def test_canonical_run_passes_and_fails(tmp_path: Path, capsys) -> None:
    good = _problems(tmp_path / "good.jsonl", "    return x + 1\n")
    assert main(["bench", "code", "--canonical", "--problems", str(good), "--workers", "1",
                 "--out", str(tmp_path / "a")]) == 0
    assert "| 1 | 1.000 |" in capsys.readouterr().out
    bad = _problems(tmp_path / "bad.jsonl", "    return x\n")
    assert main(["bench", "code", "--canonical", "--problems", str(bad), "--workers", "1",
                 "--out", str(tmp_path / "b")]) == 1
    assert "failing: T/0" in capsys.readouterr().out
    assert (tmp_path / "b" / "report.md").exists()


def test_blobs_and_agent_suites_run(tmp_path: Path, capsys) -> None:
    assert main(["bench", "blobs", "--counters", "constant:24", "--sets", "coins",
                 "--variants", "classic", "--workers", "1", "--out", str(tmp_path / "c")]) == 0
    assert "constant:24" in capsys.readouterr().out
    assert main(["bench", "agent", "--limit", "2", "--out", str(tmp_path / "d")]) == 0
    assert "oracle" in capsys.readouterr().out


def test_bad_options_give_a_message(tmp_path: Path, capsys) -> None:
    assert main(["bench", "blobs", "--prompt", "novalue", "--out", str(tmp_path)]) == 2
    assert "NAME=VALUE" in capsys.readouterr().out
    assert main(["bench", "code", "--samples", str(tmp_path / "none.jsonl"),
                 "--out", str(tmp_path)]) == 2
    assert "no such file" in capsys.readouterr().out
