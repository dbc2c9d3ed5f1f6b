"""Code-correctness benchmark: run HumanEval-format samples for real, in the sandbox, score pass@k.

A run reads problems and samples (or generates samples with a model, or takes the canonical
solutions), executes ``prompt + completion + test + check(entry_point)`` for each sample in a
contained child process (:mod:`evals.sandbox`), appends one JSON line per sample to
``results.jsonl`` (a rerun skips what is there), and writes ``summary.json`` and ``report.md``
with plots.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tqdm import tqdm

from evals import report, sandbox
from evals.extract import build_program, extract_code
from evals.humaneval import (
    DEFAULT_PROBLEMS,
    InputIssue,
    Problem,
    Sample,
    canonical_samples,
    iter_jsonl,
    read_problems,
    read_samples,
)
from evals.models import Model
from evals.passk import mean_pass_at_k, pass_at_k
from evals.runner import ResultStore, run_jobs
from tools.errors import InputError

DEFAULT_PROMPT = (
    "Complete the following Python function. Reply with the whole function, including the "
    "imports it needs, in a single ```python code block.\n\n```python\n{prompt}```\n"
)
HUMAN_EVAL_BIA_PROMPT = (
    # human-eval-bia's own prompt (setup_prompt in its demo/create_samples.ipynb, MIT licence),
    # kept to the character, indentation included: scores are comparable with its leaderboard
    # only under its own prompt.
    "Complete the following code. \n"
    "    First, write down a plan as comments how to solve the problem step-by-step.\n"
    "    Then, import the python libraries you think you will use.\n"
    "    Then, write the function you were asked for.\n"
    "    Write python code only.\n"
    "    Do NOT write any code for testing the function.\n"
    "    Return the complete code including my code.\n"
    "\n"
    "```python\n"
    "{prompt}\n"
    "```\n"
    "    "
)
DEFAULT_LIMITS = sandbox.Limits(timeout=120.0, cpu_seconds=30)
"""A sample's budget: 30 CPU seconds after its imports, 120 s of wall time at most. CPU time,
not wall time, is what the sample itself spends: on a loaded machine the wall clock of the
same program stretches several times (OpenCL compiling kernels on first use: 5.5 s of CPU,
10-30 s of wall time on this 2-core machine under load)."""
END_OF_CODE = "\n```\n"
"""Stop sequence of ``--stop-after-code``: the close of the answer's first code block. What
small models write after it (an explanation, a usage example) is not run, only paid for."""
KEY_FIELDS = ("task_id", "sample")
_BESIDE = re.compile(r"""["']\.\./([A-Za-z0-9_.-]+)/""")


def suite_of(problems: dict[str, Problem]) -> str:
    """``human-eval-bia`` when the problems are that suite's (its task ids name its notebooks
    in ``../test_cases/``), else ``bia``."""
    ids = list(problems)
    if ids and all(t.startswith("../test_cases/") for t in ids):
        return "human-eval-bia"
    return "bia"


def default_template(problems: dict[str, Problem]) -> str:
    """The generation prompt a suite is scored with: its own where it has one."""
    return HUMAN_EVAL_BIA_PROMPT if suite_of(problems) == "human-eval-bia" else DEFAULT_PROMPT


def data_place(problems: dict[str, Problem], data_dir: str | os.PathLike[str] | None) -> str:
    """Where the data folder goes for these problems, relative to a sample's working folder.

    ``../NAME`` when the tests open files as ``../NAME/...`` and NAME is the data folder's
    name (human-eval-bia: ``../example_data``), else ``data`` (bia's tasks).
    """
    if data_dir is None:
        return "data"
    name = Path(data_dir).resolve().name
    for problem in problems.values():
        for found in _BESIDE.findall(problem.test + problem.prompt + problem.canonical_solution):
            if found == name:
                return f"../{name}"
    return "data"


def execute_job(job: dict[str, Any]) -> dict[str, Any]:
    """Run one sample's program in the sandbox; a module-level function for process pools."""
    limits = sandbox.Limits(**job["limits"])
    result = sandbox.run_program(job["program"], limits, data_dir=job.get("data_dir"),
                                 data_at=job.get("data_at", "data"), mode=job.get("mode"))
    record = {"task_id": job["task_id"], "sample": job["sample"], **result.to_dict()}
    record["completion"] = job["completion"][:2000]
    return record


def generate_samples(
    problems: dict[str, Problem],
    model: Model,
    path: str | os.PathLike[str],
    *,
    n: int = 1,
    template: str = DEFAULT_PROMPT,
    temperature: float = 0.2,
    budget_seconds: float | None = None,
) -> tuple[Path, int]:
    """Ask ``model`` for ``n`` completions of each problem and append them to ``path``.

    Resumable: samples already in the file count towards ``n``, and each sample is written
    (and flushed) as soon as it exists, so a crash or Ctrl-C keeps every finished one. Each line
    keeps the model's raw answer next to the extracted ``completion``, the seconds it took and
    the tokens used. Sample ``i`` of every task is drawn with seed ``i``.

    Parameters
    ----------
    problems : dict
        Problems by task id.
    model : Model
        What writes the code.
    path : path-like
        The samples JSONL (appended to).
    n : int
        Samples per task.
    template : str
        The prompt; ``{prompt}`` is replaced by the task's prompt.
    temperature : float
        Sampling temperature.
    budget_seconds : float, optional
        Stop starting new samples after this long (the next run goes on from there).

    Returns
    -------
    (Path, int)
        The file and how many samples are still missing (0 when complete).
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if "{prompt}" not in template:
        raise ValueError("the prompt template must contain {prompt}")
    path = Path(path)
    have: Counter[str] = Counter()
    if path.exists():
        for _, value, problem in iter_jsonl(path):
            if problem is None and isinstance(value, dict) and "task_id" in value:
                have[value["task_id"]] += 1
    path.parent.mkdir(parents=True, exist_ok=True)
    # Sample 0 of every task first, then sample 1 ...: a run cut short still covers all tasks.
    todo = [(p, i) for i in range(n) for p in problems.values() if have[p.task_id] <= i]
    started = time.perf_counter()
    done = 0
    with open(path, "a", encoding="utf-8") as handle:
        for problem, index in tqdm(todo, desc=f"generating with {model.name}", unit="sample"):
            if budget_seconds is not None and time.perf_counter() - started > budget_seconds:
                break
            prompt = template.replace("{prompt}", problem.prompt)
            start = time.perf_counter()
            try:
                raw = model.generate(prompt, temperature=temperature, seed=index)
                error = None
            except Exception as exc:  # a failed request is a failed sample, not a failed run
                raw, error = "", f"{type(exc).__name__}: {exc}"
            usage = getattr(model, "last_usage", None) or {}
            record = {
                "task_id": problem.task_id, "sample": index,
                "completion": extract_code(raw, problem.entry_point),
                "raw": raw, "model": model.name, "temperature": temperature,
                "stop": list(getattr(model, "stop", []) or []),
                "seconds": round(time.perf_counter() - start, 3),
                **({"completion_tokens": usage["completion_tokens"]}
                   if "completion_tokens" in usage else {}),
                **({"error": error} if error else {}),
            }
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            handle.flush()
            done += 1
    return path, len(todo) - done


def _issue_record(issue: InputIssue, kind: str) -> dict[str, Any]:
    return {"task_id": issue.task_id or f"<line {issue.line}>",
            "sample": f"{kind}-line-{issue.line}",
            "category": "invalid", "passed": False, "detail": issue.problem, "seconds": 0.0,
            "source": issue.source}


def run_code_bench(
    out_dir: str | os.PathLike[str],
    *,
    problems_path: str | os.PathLike[str] = DEFAULT_PROBLEMS,
    samples_path: str | os.PathLike[str] | None = None,
    canonical: bool = False,
    limits: sandbox.Limits | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    data_at: str | None = None,
    workers: int = 2,
    scheduler: str | None = None,
    mode: sandbox.Mode | None = None,
    ks: Sequence[int] = (1, 5, 10),
) -> dict[str, Any]:
    """Execute samples and write results, summary and report to ``out_dir``.

    Parameters
    ----------
    out_dir : path-like
        Results folder (``results.jsonl``, ``summary.json``, ``report.md``, PNG plots).
    problems_path : path-like
        HumanEval-format problems; bia's bio-image-analysis tasks by default.
    samples_path : path-like, optional
        Samples (``task_id``, ``completion``) to score.
    canonical : bool
        Score the problems' canonical solutions instead of samples.
    limits : Limits, optional
        Sandbox resources per sample; :data:`DEFAULT_LIMITS` when None.
    data_dir : path-like, optional
        The folder the tests read.
    data_at : str, optional
        Where it goes relative to a sample's working folder: ``data`` (a copy inside it) or
        ``../NAME`` (beside it, read-only); by default as the tests expect (:func:`data_place`).
    workers : int
        Local worker processes.
    scheduler : str, optional
        Dask scheduler address.
    mode : {"fork", "spawn"}, optional
        How the sandbox starts a sample.
    ks : sequence of int
        The k of pass@k.

    Returns
    -------
    dict
        The summary (also written to ``summary.json``).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    limits = limits or DEFAULT_LIMITS
    problems, problem_issues = read_problems(problems_path)
    if canonical:
        samples, sample_issues = canonical_samples(problems), []
    elif samples_path is not None:
        samples, sample_issues = read_samples(samples_path, problems)
    else:
        raise ValueError("give samples_path, or canonical=True")
    store = ResultStore(out / "results.jsonl", KEY_FIELDS)
    issues = [(i, "problems") for i in problem_issues] + [(i, "samples") for i in sample_issues]
    for issue, kind in issues:
        record = _issue_record(issue, kind)
        if record not in store:
            store.append(record)
    if data_dir is not None and not Path(data_dir).is_dir():
        raise InputError(f"data folder {str(data_dir)!r} does not exist")
    data_at = data_at or data_place(problems, data_dir)
    sandbox.data_location(data_at)  # a bad place fails here, not once per sample
    jobs = [_job(problems[s.task_id], s, limits, data_dir, data_at, mode) for s in samples]
    todo = [job for job in jobs if job not in store]
    start = time.perf_counter()
    for record in run_jobs(execute_job, todo, workers=workers, scheduler=scheduler,
                           initializer=sandbox.preload, description="executing samples"):
        store.append(record)
    wall = time.perf_counter() - start
    summary = summarize(store.records, ks=ks)
    summary["run"] = {
        "problems": str(problems_path), "samples": str(samples_path) if samples_path else None,
        "canonical": canonical, "executed_now": len(todo), "wall_seconds": round(wall, 2),
        "samples_per_minute": round(60 * len(todo) / wall, 1) if todo and wall > 0 else None,
        "workers": workers, "scheduler": scheduler, "limits": asdict(limits),
        "mode": mode or "fork", "suite": suite_of(problems),
        "data_dir": str(data_dir) if data_dir else None, "data_at": data_at,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    write_report(out, summary)
    return summary


def _job(problem: Problem, sample: Sample, limits: sandbox.Limits,
         data_dir: str | os.PathLike[str] | None, data_at: str,
         mode: str | None) -> dict[str, Any]:
    return {
        "task_id": sample.task_id, "sample": sample.index, "completion": sample.completion,
        "program": build_program(problem.prompt, sample.completion, problem.test,
                                 problem.entry_point),
        "limits": asdict(limits), "data_dir": str(data_dir) if data_dir else None,
        "data_at": data_at, "mode": mode,
    }


def summarize(records: Sequence[dict[str, Any]], ks: Sequence[int] = (1, 5, 10)) -> dict[str, Any]:
    """pass@k, outcome categories and per-task counts from result records."""
    per_task: dict[str, list[bool]] = defaultdict(list)
    categories: Counter[str] = Counter()
    for record in records:
        categories[record["category"]] += 1
        if record["category"] != "invalid":
            per_task[record["task_id"]].append(bool(record["passed"]))
    counts = {t: (len(v), sum(v)) for t, v in per_task.items()}
    executed = sum(n for n, _ in counts.values())
    return {
        "tasks": len(counts),
        "samples": executed,
        "invalid": categories.get("invalid", 0),
        "passed": sum(c for _, c in counts.values()),
        "pass_rate": (sum(c for _, c in counts.values()) / executed) if executed else 0.0,
        "pass_at_k": {str(k): v for k, v in mean_pass_at_k(counts, ks).items()},
        "categories": dict(sorted(categories.items(), key=lambda kv: -kv[1])),
        "per_task": {
            t: {"n": n, "c": c, "pass@1": pass_at_k(n, c, 1)}
            for t, (n, c) in sorted(counts.items())
        },
    }


def write_report(out: Path, summary: dict[str, Any]) -> Path:
    """``report.md`` with pass@k, outcome categories, the failing tasks, and two plots."""
    categories = summary["categories"]
    report.bar_chart(list(categories), list(categories.values()), out / "categories.png",
                     title="Outcome of each sample", ylabel="samples")
    rates = [v["pass@1"] for v in summary["per_task"].values()]
    plt = report.pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.hist(rates, bins=[i / 10 for i in range(11)], color="#4477aa")
    ax.set_xlabel("pass@1 of a task")
    ax.set_ylabel("tasks")
    ax.set_title("Per-task pass@1")
    report.save_figure(fig, out / "per_task_pass_at_1.png")
    run = summary.get("run", {})
    lines = [
        "# Code correctness\n",
        f"{summary['tasks']} tasks, {summary['samples']} executed samples, "
        f"{summary['invalid']} invalid input lines. Pass rate {summary['pass_rate']:.3f}.\n",
    ]
    if run.get("samples_per_minute"):
        lines.append(f"This run executed {run['executed_now']} samples in {run['wall_seconds']} s "
                     f"({run['samples_per_minute']} samples/min, {run['workers']} workers).\n")
    lines.append(report.markdown_table(
        ["k", "pass@k"], [(k, v) for k, v in summary["pass_at_k"].items()]))
    lines.append("\n## Outcomes\n")
    lines.append(report.markdown_table(["category", "samples"], list(categories.items())))
    lines.append("\n![outcomes](categories.png)\n\n![per task](per_task_pass_at_1.png)\n")
    failing = [(t, v["n"], v["c"]) for t, v in summary["per_task"].items() if v["c"] < v["n"]]
    if failing:
        lines.append("\n## Tasks with failing samples\n")
        lines.append(report.markdown_table(["task", "samples", "passed"], failing))
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path


def _plain_job(job: dict[str, Any]) -> dict[str, Any]:
    """Run one trusted canonical program in a fresh interpreter, no sandbox (a pool job)."""
    import shutil
    import subprocess
    import sys
    import tempfile

    container = tempfile.mkdtemp(prefix="bia-plain-")
    workdir = Path(container) / "work"
    workdir.mkdir()
    try:
        if job["data_dir"]:
            target = (workdir / job["data_at"]).resolve()
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(job["data_dir"], target)
        start = time.perf_counter()
        try:
            done = subprocess.run([sys.executable, "-c", job["program"]], cwd=workdir,
                                  capture_output=True, text=True, timeout=job["timeout"])
            passed, detail = done.returncode == 0, done.stderr.strip().splitlines()[-1:]
        except subprocess.TimeoutExpired:
            passed, detail = False, [f"timed out after {job['timeout']} s"]
        return {"task_id": job["task_id"], "passed": passed, "detail": " ".join(detail)[:300],
                "seconds": round(time.perf_counter() - start, 2)}
    finally:
        shutil.rmtree(container, ignore_errors=True)


def plain_outcomes(
    problems: dict[str, Problem],
    *,
    data_dir: str | os.PathLike[str] | None = None,
    data_at: str | None = None,
    timeout: float = 300.0,
    workers: int = 2,
) -> dict[str, dict[str, Any]]:
    """Whether each canonical solution passes when run plainly, outside the sandbox.

    The reference the sandboxed run must match: each problem's own canonical program in a
    fresh interpreter of this environment, in a fresh folder laid out as its tests expect,
    with no limit but a generous timeout. Only for the suite's own canonical solutions,
    which are trusted code; model samples always run in the sandbox.

    Returns
    -------
    dict
        Per task id: ``passed``, ``detail`` (last line of stderr) and ``seconds``.
    """
    place = data_at or data_place(problems, data_dir)
    jobs = [{"task_id": p.task_id, "timeout": timeout,
             "program": build_program(p.prompt, p.canonical_solution, p.test, p.entry_point),
             "data_dir": str(Path(data_dir).resolve()) if data_dir else None, "data_at": place}
            for p in problems.values()]
    results = run_jobs(_plain_job, jobs, workers=workers, description="plain execution")
    return {r["task_id"]: r for r in results}
