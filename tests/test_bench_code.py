"""The code-correctness suite: the shipped tasks, bad input files, resumable parallel runs."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from evals import bia_tasks, code_bench, sandbox
from evals.humaneval import DEFAULT_PROBLEMS, read_problems, read_samples, write_jsonl
from tools.errors import InputError


def test_shipped_jsonl_matches_its_source() -> None:
    shipped = [json.loads(line) for line in DEFAULT_PROBLEMS.read_text().splitlines()]
    assert shipped == bia_tasks.problems()
    assert len(shipped) >= 40
    assert len({p["entry_point"] for p in shipped}) == len(shipped)


@pytest.fixture(scope="module")
def canonical_summary(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("canonical")
    return code_bench.run_code_bench(out, canonical=True, workers=1)


def test_every_canonical_solution_passes(canonical_summary: dict) -> None:
    assert canonical_summary["tasks"] >= 40
    assert canonical_summary["passed"] == canonical_summary["samples"]
    assert canonical_summary["pass_at_k"]["1"] == 1.0


@pytest.mark.slow
def test_every_task_test_can_fail(tmp_path: Path) -> None:
    """A function that returns None, or the canonical solution of another task, fails."""
    problems, _ = read_problems(DEFAULT_PROBLEMS)
    ids = list(problems)
    rows = [{"task_id": t, "completion": "    return None\n"} for t in ids]
    rows += [{"task_id": t, "completion": problems[ids[(i + 1) % len(ids)]].canonical_solution}
             for i, t in enumerate(ids)]
    write_jsonl(tmp_path / "wrong.jsonl", rows)
    summary = code_bench.run_code_bench(tmp_path / "out", samples_path=tmp_path / "wrong.jsonl",
                                        workers=1)
    survivors = [t for t, v in summary["per_task"].items() if v["c"] > 0]
    assert survivors == [], survivors


def _bad_files(folder: Path) -> tuple[Path, Path]:
    problems = folder / "problems.jsonl"
    good = {"task_id": "T/0", "prompt": "def inc(x):\n", "canonical_solution": "    return x + 1\n",
            "entry_point": "inc", "test": "def check(f):\n    assert f(1) == 2\n"}
    problems.write_text("\n".join([
        json.dumps(good),
        '{"task_id": "T/1", "prompt": "broken',                      # malformed JSON
        json.dumps({"task_id": "T/2", "prompt": "x"}),               # missing fields
        json.dumps({**good, "task_id": "T/3", "entry_point": "not a name"}),
        json.dumps(good),                                            # duplicate id
        json.dumps([1, 2]),                                          # not an object
    ]) + "\n")
    samples = folder / "samples.jsonl"
    samples.write_text("\n".join([
        json.dumps({"task_id": "T/0", "completion": "    return x + 1\n"}),
        json.dumps({"task_id": "T/0", "completion": "    return x\n"}),
        json.dumps({"task_id": "T/404", "completion": "    return 1\n"}),   # unknown task
        json.dumps({"task_id": "T/0"}),                                      # no completion
        json.dumps({"task_id": "T/0", "completion": 5}),                     # not text
        "not json at all",
        "",
    ]) + "\n")
    return problems, samples


def test_bad_lines_are_reported_not_fatal(tmp_path: Path) -> None:
    problems_path, samples_path = _bad_files(tmp_path)
    problems, issues = read_problems(problems_path)
    assert list(problems) == ["T/0"]
    reasons = " | ".join(i.problem for i in issues)
    for expected in ("not valid JSON", "missing fields", "not a Python name", "duplicate",
                     "expected a JSON object"):
        assert expected in reasons
    samples, sample_issues = read_samples(samples_path, problems)
    assert [s.index for s in samples] == [0, 1]
    reasons = " | ".join(i.problem for i in sample_issues)
    for expected in ("unknown task_id 'T/404'", "missing field completion", "must be text",
                     "not valid JSON"):
        assert expected in reasons


def test_bad_lines_become_invalid_results(tmp_path: Path) -> None:
    problems_path, samples_path = _bad_files(tmp_path)
    summary = code_bench.run_code_bench(tmp_path / "out", problems_path=problems_path,
                                        samples_path=samples_path, workers=1)
    assert summary["samples"] == 2 and summary["passed"] == 1
    assert summary["invalid"] == 9
    assert summary["categories"]["invalid"] == 9
    records = [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").open()]
    assert any(r["category"] == "invalid" and "T/404" in r["detail"] for r in records)
    assert (tmp_path / "out" / "report.md").exists()


def test_unusable_problem_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        read_problems(tmp_path / "missing.jsonl")
    (tmp_path / "empty.jsonl").write_text("nonsense\n")
    with pytest.raises(InputError, match="no usable problem"):
        read_problems(tmp_path / "empty.jsonl")


HOSTILE = {
    "loop": "    while True:\n        pass\n",
    "fork": "    import os\n    while True:\n        os.fork()\n",
    "delete": "    import shutil\n    shutil.rmtree({victim!r})\n",
    "socket": "    import socket\n    socket.create_connection(('127.0.0.1', 9), timeout=1)\n",
    "memory": "    x = bytearray(64 * 2**30)\n",
    "exit": "    import sys\n    sys.exit(0)\n",
    "os_exit": "    import os\n    os._exit(0)\n",
    "write": "    open({victim_file!r}, 'w').write('owned')\n    return x + 1\n",
}
EXPECTED = {"loop": "timeout", "fork": "blocked", "delete": "blocked", "socket": "blocked",
            "memory": "memory", "exit": "exit", "os_exit": "exit", "write": "blocked"}


@pytest.mark.slow
def test_hostile_samples_leave_the_host_and_other_samples_alone(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.mkdir(mode=0o777)
    (victim / "data.txt").write_text("precious")
    problems = tmp_path / "problems.jsonl"
    write_jsonl(problems, [{
        "task_id": "T/0", "prompt": "def inc(x):\n", "canonical_solution": "    return x + 1\n",
        "entry_point": "inc", "test": "def check(f):\n    assert f(1) == 2\n",
    }])
    good = {"task_id": "T/0", "completion": "    return x + 1\n"}
    rows = []
    for code in HOSTILE.values():
        rows += [good, {"task_id": "T/0", "completion": code.format(
            victim=str(victim), victim_file=str(victim / "data.txt"))}]
    rows.append(good)
    write_jsonl(tmp_path / "samples.jsonl", rows)
    out = tmp_path / "out"
    summary = code_bench.run_code_bench(
        out, problems_path=problems, samples_path=tmp_path / "samples.jsonl", workers=2,
        limits=sandbox.Limits(timeout=2),
    )
    records = {r["sample"]: r for r in map(json.loads, (out / "results.jsonl").open())}
    for i, name in enumerate(HOSTILE):
        assert records[2 * i]["category"] == "passed", name
        assert records[2 * i + 1]["category"] == EXPECTED[name], (name, records[2 * i + 1])
    assert records[len(rows) - 1]["passed"]
    assert summary["passed"] == len(HOSTILE) + 1
    assert (victim / "data.txt").read_text() == "precious"


def test_a_rerun_resumes(tmp_path: Path) -> None:
    problems = tmp_path / "p.jsonl"
    write_jsonl(problems, [{
        "task_id": "T/0", "prompt": "def inc(x):\n", "canonical_solution": "    return x + 1\n",
        "entry_point": "inc", "test": "def check(f):\n    assert f(1) == 2\n"}])
    write_jsonl(tmp_path / "s.jsonl", [{"task_id": "T/0", "completion": "    return x + 1\n"}] * 3)
    first = code_bench.run_code_bench(tmp_path / "o", problems_path=problems,
                                      samples_path=tmp_path / "s.jsonl", workers=1)
    assert first["run"]["executed_now"] == 3
    with (tmp_path / "o" / "results.jsonl").open("a") as handle:
        handle.write('{"task_id": "T/0", "sam')  # a line cut short by a killed run
    second = code_bench.run_code_bench(tmp_path / "o", problems_path=problems,
                                       samples_path=tmp_path / "s.jsonl", workers=1)
    assert second["run"]["executed_now"] == 0
    assert second["samples"] == 3 and second["pass_at_k"]["1"] == 1.0


def test_generation_with_a_scripted_model(tmp_path: Path) -> None:
    from evals.models import ScriptedModel

    problems, _ = read_problems(DEFAULT_PROBLEMS)
    first = dict(list(problems.items())[:2])
    answers = {p.prompt: p for p in first.values()}

    def reply(prompt: str, image: object) -> str:
        problem = next(p for text, p in answers.items() if text in prompt)
        return (f"Here you go:\n```python\n{problem.prompt}{problem.canonical_solution}```\n"
                "It works.")

    path, missing = code_bench.generate_samples(first, ScriptedModel(reply),
                                                tmp_path / "s.jsonl", n=2)
    assert missing == 0 and len(path.read_text().splitlines()) == 4
    _, missing = code_bench.generate_samples(first, ScriptedModel(reply), path, n=2)
    assert missing == 0 and len(path.read_text().splitlines()) == 4  # resumed: nothing new
    subset = tmp_path / "subset.jsonl"
    write_jsonl(subset, [{"task_id": p.task_id, "prompt": p.prompt,
                          "canonical_solution": p.canonical_solution,
                          "entry_point": p.entry_point, "test": p.test} for p in first.values()])
    summary = code_bench.run_code_bench(tmp_path / "out", problems_path=subset,
                                        samples_path=path, workers=1)
    assert summary["pass_at_k"] == {"1": 1.0}


@pytest.mark.slow
def test_runs_on_a_dask_scheduler(tmp_path: Path) -> None:
    from distributed import LocalCluster

    problems = tmp_path / "p.jsonl"
    write_jsonl(problems, [{
        "task_id": "T/0", "prompt": "def inc(x):\n", "canonical_solution": "    return x + 1\n",
        "entry_point": "inc", "test": "def check(f):\n    assert f(1) == 2\n"}])
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    write_jsonl(tmp_path / "s.jsonl", [
        {"task_id": "T/0", "completion": "    return x + 1\n"},
        {"task_id": "T/0", "completion": f"    import os\n    os.remove({str(victim)!r})\n"},
    ])
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster:
        summary = code_bench.run_code_bench(
            tmp_path / "o", problems_path=problems, samples_path=tmp_path / "s.jsonl",
            scheduler=cluster.scheduler_address)
    assert summary["categories"] == {"passed": 1, "blocked": 1}
    assert summary["run"]["scheduler"] == cluster.scheduler_address
    assert victim.read_text() == "keep"


def test_generation_stops_at_its_budget_and_resumes(tmp_path: Path) -> None:
    from evals.models import ScriptedModel

    problems, _ = read_problems(DEFAULT_PROBLEMS)
    three = dict(list(problems.items())[:3])
    calls: list[str] = []

    def slow(prompt: str, image: object) -> str:
        calls.append(prompt)
        time.sleep(0.3)
        return "```python\ndef f():\n    pass\n```"

    path, missing = code_bench.generate_samples(three, ScriptedModel(slow), tmp_path / "s.jsonl",
                                                n=2, budget_seconds=0.5)
    written = [json.loads(line) for line in path.read_text().splitlines()]
    assert 1 <= len(written) < 6 and missing == 6 - len(written)
    # Sample 0 of every task comes before any task's sample 1.
    assert [r["sample"] for r in written] == sorted(r["sample"] for r in written)
    _, missing = code_bench.generate_samples(three, ScriptedModel(slow), path, n=2)
    assert missing == 0 and len(path.read_text().splitlines()) == 6
    assert all(r.get("seconds", 0) >= 0.3 for r in map(json.loads, path.open()))


def test_human_eval_bia_gets_its_own_prompt_and_data_layout(tmp_path: Path) -> None:
    from evals.humaneval import Problem

    hbia = {"../test_cases/a.ipynb": Problem(
        "../test_cases/a.ipynb", "def a(folder):\n", "    return 1\n", "a",
        "def check(c):\n    assert c('../example_data/images/') == 1\n")}
    assert code_bench.suite_of(hbia) == "human-eval-bia"
    assert code_bench.default_template(hbia) == code_bench.HUMAN_EVAL_BIA_PROMPT
    data = tmp_path / "example_data"
    data.mkdir()
    assert code_bench.data_place(hbia, data) == "../example_data"
    assert code_bench.data_place(hbia, tmp_path) == "data"  # not the folder the tests name
    ours, _ = read_problems(DEFAULT_PROBLEMS)
    assert code_bench.suite_of(ours) == "bia"
    assert code_bench.default_template(ours) == code_bench.DEFAULT_PROMPT
    assert "{prompt}" in code_bench.HUMAN_EVAL_BIA_PROMPT
    with pytest.raises(InputError, match="does not exist"):
        code_bench.run_code_bench(tmp_path / "o", canonical=True, data_dir=tmp_path / "none")


def test_a_human_eval_bia_shaped_suite_runs_beside_its_data(tmp_path: Path) -> None:
    data = tmp_path / "example_data"
    (data / "images").mkdir(parents=True)
    for name in ("b.tif", "a.tif", "notes.txt"):
        (data / "images" / name).write_text("x")
    problems = tmp_path / "suite.jsonl"
    write_jsonl(problems, [{
        "task_id": "../test_cases/list_tifs.ipynb", "entry_point": "list_tifs",
        "prompt": "def list_tifs(folder):\n",
        "canonical_solution": "    import os\n    names = os.listdir(folder)\n"
                              "    return sorted(f for f in names if f.endswith('.tif'))\n",
        "test": "def check(c):\n    assert c('../example_data/images/') == ['a.tif', 'b.tif']\n"}])
    summary = code_bench.run_code_bench(tmp_path / "out", problems_path=problems,
                                        canonical=True, data_dir=data, workers=1)
    assert summary["passed"] == 1, summary
    assert summary["run"]["data_at"] == "../example_data"
