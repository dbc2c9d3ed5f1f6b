"""``bia bench all``: targets, the plain-execution reference, the generated README tables."""

from __future__ import annotations

from pathlib import Path

from evals import code_bench, suite
from evals.humaneval import Problem


def _code_summary(passed: dict[str, bool]) -> dict:
    return {"passed": sum(passed.values()), "samples": len(passed),
            "per_task": {t: {"n": 1, "c": int(ok)} for t, ok in passed.items()}}


def _summary(harness: dict[str, bool], plain: dict[str, bool]) -> dict:
    blobs = {
        "groups": [
            {"counter": c, "set": s, "variant": "classic", "n": 1, "exact": 0.0, "mae": mae,
             "bias": -mae, "mean_answer": 1.0, "sd_answer": 0.0, "parse_failures": 0}
            for c, s, mae in (("classical", "classic", 35.0), ("agent:1.5b", "classic", 2.0),
                              ("classical", "synthetic", 2.5), ("agent:1.5b", "synthetic", 4.0))
        ],
        "published": [dict(r) for r in suite.blob_bench.PUBLISHED],
    }
    run = {"suite": "hbia", "model": "0.5b", "pass_at_k": {"1": 0.25}, "samples": 6, "tasks": 2,
           "categories": {"passed": 2, "syntax": 1, "assertion": 3},
           "per_task": {"a": {"n": 3, "c": 1}, "b": {"n": 3, "c": 1}},
           "generation": {"n_wanted": 3, "tasks_total": 2, "complete": True,
                          "seconds_per_sample": 31.0, "tokens_per_sample": 250}}
    return {
        "machine": suite.machine(),
        "code": {"bia_canonical": _code_summary({"x": True, "y": True}),
                 "hbia_canonical": _code_summary(harness),
                 "hbia_plain": {t: {"passed": ok} for t, ok in plain.items()},
                 "models": [run]},
        "blobs": blobs,
    }


def test_targets_say_where_each_figure_stands(tmp_path: Path) -> None:
    summary = _summary({"a": True, "b": False, "c": False}, {"a": True, "b": True, "c": False})
    rows = {r["figure"]: r for r in suite.targets(summary)}
    assert rows["bia tasks: canonical solutions passing"]["status"] == "met"
    agree = rows["human-eval-bia canonical: harness agrees with plain execution"]
    assert agree["value"] == "2/3" and agree["status"] == "NOT MET" and agree["differ"] == ["b"]
    assert rows["pass@1 0.5b on hbia"]["status"] == "complete"
    # gpt-4o's published answers average 8.6 below the truth: its MAE is at least 8.6.
    assert rows["agent:1.5b MAE on the classic image"]["status"] == "met"
    assert rows["classical MAE on the classic image"]["status"] == "NOT MET"
    assert rows["agent:1.5b MAE on synthetic"]["status"] == "NOT MET"
    summary["targets"] = list(rows.values())
    suite.write_report(tmp_path, summary)
    text = (tmp_path / "report.md").read_text()
    assert "NOT MET" in text and "differ: b" in text
    tables = (tmp_path / "readme_tables.md").read_text()
    assert "claude-3-5-sonnet-20241022 (published)" in tables and "0.637" in tables
    assert "gpt-4o (published)" in tables and ">= 8.6" in tables
    assert "Qwen2.5-Coder-0.5B-Instruct Q4_K_M, embedded (this run)" in tables
    assert "0.250" in tables


def test_plain_execution_reference_runs_each_canonical_solution(tmp_path: Path) -> None:
    data = tmp_path / "example_data"
    data.mkdir()
    (data / "n.txt").write_text("5")
    problems = {
        "good": Problem("good", "def f():\n", "    return int(open('../example_data/n.txt')"
                        ".read())\n", "f", "def check(c):\n    assert c() == 5\n"),
        "bad": Problem("bad", "def g():\n", "    return 4\n", "g",
                       "def check(c):\n    assert c() == 5\n"),
    }
    outcomes = code_bench.plain_outcomes(problems, data_dir=data, workers=1)
    assert outcomes["good"]["passed"] and not outcomes["bad"]["passed"]
    assert "AssertionError" in outcomes["bad"]["detail"]


def test_the_readme_tables_are_replaced_between_their_markers(tmp_path: Path) -> None:
    summary = _summary({"a": True}, {"a": True})
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- bench:code (generated) -->\nold\n<!-- /bench:code -->\n"
                      "middle\n<!-- bench:blobs -->\n<!-- /bench:blobs -->\nend\n")
    assert suite.fill_readme(readme, summary)
    text = readme.read_text()
    assert "old" not in text and "0.5B-Instruct" in text and "gpt-4o (published)" in text
    assert text.startswith("intro\n") and "\nmiddle\n" in text and text.endswith("end\n")
    assert not suite.fill_readme(readme, summary)  # nothing new the second time
