"""``bia bench all``: every benchmark in one run, one report that says where each figure stands.

    bia bench all
    bia bench all --human-eval-bia ../shared/benchmarks/human-eval-bia --models 0.5b 1.5b
    bia bench all --agent-backends 1.5b 0.5b --vlm qwen2-vl@http://127.0.0.1:8000/v1

Runs, each into its own folder under ``--out`` (all resumable: a rerun skips what is done):

* ``code/bia_canonical``: bia's tasks with their canonical solutions (all must pass);
* ``code/hbia_canonical`` and a plain-execution reference (with ``--human-eval-bia DIR``, the
  folder holding ``human-eval-bia.jsonl`` and ``example_data/``): the harness must agree with
  plain execution on every task;
* ``code/<suite>_<model>``: each ``--models`` model writes ``--n`` samples per task (human-eval-
  bia's own prompt for its tasks), scored for pass@1 and outcome classes;
* ``blobs``: the classical counter and the baselines (plus the agent and a VLM when asked) on
  the synthetic, coins and real nuclei sets, and on the classic blobs image when human-eval-bia's
  example data is given, next to the published gpt-4o row.

Writes ``report.md``, ``summary.json`` and ``readme_tables.md`` (the README's benchmark tables)
and prints the targets table.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evals import blob_bench, code_bench, report
from evals.humaneval import DEFAULT_PROBLEMS, iter_jsonl, read_problems
from tools.errors import InputError

HBIA_PROBLEMS = "human-eval-bia.jsonl"
HBIA_DATA = "example_data"

LEADERBOARD = (
    ("claude-3-5-sonnet-20241022", 0.637), ("gpt-4o-2024-08-06", 0.533),
    ("gpt-4o-mini", 0.425), ("llama3-70b", 0.351), ("codegemma-7b", 0.249),
    ("phi3-3.8b", 0.181), ("llama3-8b", 0.142),
)
"""Published human-eval-bia pass@1 (10 samples per task)."""
LEADERBOARD_SOURCE = ("human-eval-bia, data/*_passk_results.csv at commit 6157140 "
                      "(haesleinhuepf/human-eval-bia, 2024-11-21)")

_SUITE_NAMES = {"hbia": "human-eval-bia", "bia": "bia"}
_MODEL_NAMES = {"0.5b": "Qwen2.5-Coder-0.5B-Instruct Q4_K_M, embedded",
                "1.5b": "Qwen2.5-Coder-1.5B-Instruct Q4_K_M, embedded"}
_SHOWN = ("passed", "syntax", "import", "invented_api", "assertion", "crash", "timeout")
OUTCOMES = ("passed", "syntax", "import", "invented_api", "assertion", "crash", "timeout",
            "memory", "blocked", "exit")


def machine() -> dict[str, Any]:
    """Where the figures were measured: cores, load, Python."""
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = []
    return {"cpus": os.cpu_count(), "load": load, "python": platform.python_version(),
            "machine": platform.machine(), "when": time.strftime("%Y-%m-%d %H:%M UTC",
                                                                 time.gmtime())}


def _samples_stats(path: Path) -> dict[str, Any]:
    """Seconds and tokens per generated sample, from a samples file."""
    seconds, tokens = [], []
    for _, value, problem in iter_jsonl(path):
        if problem is None and isinstance(value, dict):
            if isinstance(value.get("seconds"), int | float):
                seconds.append(float(value["seconds"]))
            if isinstance(value.get("completion_tokens"), int):
                tokens.append(value["completion_tokens"])
    return {
        "generated": len(seconds),
        "seconds_per_sample": round(statistics.median(seconds), 1) if seconds else None,
        "tokens_per_sample": round(statistics.median(tokens)) if tokens else None,
    }


def code_model_run(out: Path, problems_path: Path, model: str, *, n: int,
                   budget_minutes: float | None, generate: bool, data_dir: Path | None,
                   base_url: str | None, workers: int, max_tokens: int = 512,
                   temperature: float = 0.2) -> dict[str, Any] | None:
    """Generate (unless ``generate`` is False) and score one model on one problem set.

    Returns the summary with generation statistics, or None when no sample exists.
    """
    samples = out / "samples.jsonl"
    missing = None
    problems, _ = read_problems(problems_path)
    if generate:
        from evals.models import load_model

        model_ = load_model(model, base_url, max_tokens=max_tokens,
                            stop=[code_bench.END_OF_CODE])
        _, missing = code_bench.generate_samples(
            problems, model_, samples, n=n, template=code_bench.default_template(problems),
            temperature=temperature,
            budget_seconds=budget_minutes * 60 if budget_minutes else None)
    if not samples.exists():
        return None
    summary = code_bench.run_code_bench(out, problems_path=problems_path, samples_path=samples,
                                        data_dir=data_dir, workers=workers, ks=(1,))
    stats = _samples_stats(samples)
    per_task = summary["per_task"]
    summary["generation"] = {
        **stats, "model": model, "n_wanted": n, "tasks_total": len(problems),
        "complete": all(per_task.get(t, {}).get("n", 0) >= n for t in problems),
        "missing": missing,
    }
    return summary


def run_suite(
    out_dir: str | os.PathLike[str],
    *,
    human_eval_bia: str | os.PathLike[str] | None = None,
    models: Sequence[str] = (),
    n: int = 3,
    generate: bool = True,
    budget_minutes: float | None = None,
    agent_backends: Sequence[str] = (),
    vlm: str | None = None,
    base_url: str | None = None,
    blob_samples: int = 3,
    workers: int = 2,
    plain: bool = True,
) -> dict[str, Any]:
    """Run every benchmark and write one report.

    Parameters
    ----------
    out_dir : path-like
        Results folder; each benchmark writes a sub-folder.
    human_eval_bia : path-like, optional
        Folder with ``human-eval-bia.jsonl`` and ``example_data/``.
    models : sequence of str
        Code-writing models (``0.5b``, ``1.5b``, or server model names with ``base_url``).
    n : int
        Samples per task for each model.
    generate : bool
        Generate missing samples and ask model counters for missing answers (False: score
        and report what exists).
    budget_minutes : float, optional
        Per model and problem set, stop generating after this long (rerun to go on).
    agent_backends : sequence of str
        Add an ``agent:BACKEND`` blob counter for each.
    vlm : str, optional
        Add a vision model (``MODEL@URL``, ``URL`` or ``MODEL``).
    base_url : str, optional
        OpenAI-compatible server for server models.
    blob_samples : int
        Answers per image of sampling counters.
    workers : int
        Local worker processes for executing samples and counting.
    plain : bool
        Also run human-eval-bia's canonical solutions plainly, as the reference.

    Returns
    -------
    dict
        The summary (also in ``summary.json``), with ``targets``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    hbia = Path(human_eval_bia) if human_eval_bia else None
    if hbia is not None and not (hbia / HBIA_PROBLEMS).is_file():
        raise InputError(f"{hbia} holds no {HBIA_PROBLEMS}: give human-eval-bia's folder")
    hbia_data = hbia / HBIA_DATA if hbia is not None and (hbia / HBIA_DATA).is_dir() else None
    summary: dict[str, Any] = {"machine": machine(), "code": {}, "blobs": None}
    code = summary["code"]
    code["bia_canonical"] = code_bench.run_code_bench(
        out / "code" / "bia_canonical", canonical=True, workers=workers, ks=(1,))
    if hbia is not None:
        code["hbia_canonical"] = code_bench.run_code_bench(
            out / "code" / "hbia_canonical", problems_path=hbia / HBIA_PROBLEMS,
            canonical=True, data_dir=hbia_data, workers=workers, ks=(1,))
        if plain:
            problems, _ = read_problems(hbia / HBIA_PROBLEMS)
            reference = out / "code" / "hbia_plain.json"
            if reference.exists():
                outcomes = json.loads(reference.read_text())
            else:
                outcomes = code_bench.plain_outcomes(problems, data_dir=hbia_data,
                                                     workers=workers)
                reference.write_text(json.dumps(outcomes, indent=2))
            code["hbia_plain"] = outcomes
    suites = ([("hbia", hbia / HBIA_PROBLEMS, hbia_data)] if hbia is not None else []) + [
        ("bia", DEFAULT_PROBLEMS, None)]
    code["models"] = []
    for model in models:
        for name, problems_path, data in suites:
            result = code_model_run(out / "code" / f"{name}_{model}", problems_path, model, n=n,
                                    budget_minutes=budget_minutes, generate=generate,
                                    data_dir=data, base_url=base_url, workers=workers)
            if result is not None:
                code["models"].append({"suite": name, "model": model, **result})
    counters = ["classical", "constant:24", "random:1:100"]
    counters += [f"agent:{backend}" for backend in agent_backends]
    blob_url = base_url
    if vlm:
        from evals.models import resolve_vlm

        vlm_model, blob_url = resolve_vlm(vlm, base_url)
        counters.append(f"vlm:{vlm_model}")
    sets = ["synthetic", "coins", "nuclei"]
    classic = hbia_data / "blobs.tif" if hbia_data and (hbia_data / "blobs.tif").exists() else None
    if classic is not None:
        sets.append("classic")
    summary["blobs"] = blob_bench.run_blob_bench(
        out / "blobs", counters, sets=sets, variants=("classic",), samples=blob_samples,
        base_url=blob_url, workers=workers, classic_image=classic, ask_models=generate)
    summary["targets"] = targets(summary)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    write_report(out, summary)
    return summary


def _status(ok: bool | None) -> str:
    return "not run" if ok is None else ("met" if ok else "NOT MET")


def targets(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Each headline figure, its target, and whether it is met."""
    rows: list[dict[str, Any]] = []
    code = summary["code"]
    bia = code["bia_canonical"]
    rows.append({"figure": "bia tasks: canonical solutions passing",
                 "value": f"{bia['passed']}/{bia['samples']}", "target": "all",
                 "status": _status(bia["passed"] == bia["samples"])})
    if "hbia_canonical" in code:
        harness = {t: v["c"] == v["n"] for t, v in code["hbia_canonical"]["per_task"].items()}
        rows.append({"figure": "human-eval-bia canonical passing in the harness",
                     "value": f"{sum(harness.values())}/{len(harness)}",
                     "target": "as plain execution", "status": ""})
        if "hbia_plain" in code:
            plain = {t: bool(v["passed"]) for t, v in code["hbia_plain"].items()}
            agree = sum(harness.get(t) == p for t, p in plain.items())
            differ = sorted(t for t, p in plain.items() if harness.get(t) != p)
            rows[-1]["target"] = f"{sum(plain.values())}/{len(plain)} (plain execution)"
            rows[-1]["status"] = _status(not differ)
            rows.append({"figure": "human-eval-bia canonical: harness agrees with plain "
                                   "execution", "value": f"{agree}/{len(plain)}",
                         "target": f"{len(plain)}/{len(plain)}", "status": _status(not differ),
                         "differ": differ})
    for run in code.get("models", []):
        gen = run["generation"]
        rows.append({
            "figure": f"pass@1 {run['model']} on {run['suite']}",
            "value": run["pass_at_k"].get("1"),
            "target": f"n >= {gen['n_wanted']} samples on all {gen['tasks_total']} tasks",
            "status": "complete" if gen["complete"] else
            f"partial: {run['samples']} samples, {run['tasks']} tasks"})
    blobs = summary.get("blobs") or {}
    groups = {(g["counter"], g["set"]): g for g in blobs.get("groups", [])}
    for row in blobs.get("published", []):
        bound = abs(row["mean"] - row["truth"])
        for (counter, set_name), group in groups.items():
            if set_name == row["set"] and not counter.startswith(("constant", "random")):
                rows.append({"figure": f"{counter} MAE on the {set_name} image",
                             "value": group["mae"],
                             "target": f"below {row['counter']} (MAE >= {bound:.1f})",
                             "status": _status(group["mae"] < bound)})
    for counter in sorted({c for c, _ in groups if c.startswith(("agent:", "vlm:"))}):
        for set_name in ("synthetic", "nuclei"):
            if (counter, set_name) in groups and ("classical", set_name) in groups:
                mine, classical = groups[(counter, set_name)], groups[("classical", set_name)]
                rows.append({"figure": f"{counter} MAE on {set_name}", "value": mine["mae"],
                             "target": f"at most the classical counter's ({classical['mae']:.1f})",
                             "status": _status(mine["mae"] <= classical["mae"])})
    return rows


def code_table(summary: dict[str, Any]) -> str:
    """pass@1 of each model on each suite, outcome classes, beside the published leaderboard."""
    rows = []
    for run in summary["code"].get("models", []):
        cats = run["categories"]
        gen = run["generation"]
        sizes = [v["n"] for v in run["per_task"].values()] or [0]
        lo, hi = min(sizes), max(sizes)
        rows.append((
            _MODEL_NAMES.get(run["model"], run["model"]) + " (this run)",
            _SUITE_NAMES.get(run["suite"], run["suite"]),
            run["pass_at_k"].get("1"),
            f"{run['tasks']}/{gen['tasks_total']}", str(lo) if lo == hi else f"{lo}-{hi}",
            *(cats.get(c, 0) for c in _SHOWN),
            sum(v for k, v in cats.items() if k not in _SHOWN),
            gen["seconds_per_sample"], gen["tokens_per_sample"]))
    for model, value in LEADERBOARD:
        rows.append((model + " (published)", "human-eval-bia", value, "57/57", "10",
                     *([""] * (len(_SHOWN) + 1)), "", ""))
    return report.markdown_table(
        ["model", "suite", "pass@1", "tasks", "n/task", "passed", "syntax", "import",
         "invented API", "assertion", "crash", "timeout", "other", "s/sample",
         "tokens/sample"], rows)


def blob_table(summary: dict[str, Any]) -> str:
    """Exact match, MAE and bias per counter and image set, with the published row."""
    blobs = summary.get("blobs") or {"groups": [], "published": []}
    rows = [(g["counter"], g["set"], g["n"], g["exact"], g["mae"], g["bias"],
             g["mean_answer"], g["sd_answer"], g["parse_failures"]) for g in blobs["groups"]]
    for row in blobs.get("published", []):
        rows.append((row["counter"], row["set"], row["n"], "unknown",
                     f">= {abs(row['mean'] - row['truth']):.1f}", row["mean"] - row["truth"],
                     row["mean"], row["sd"], "-"))
    return report.markdown_table(
        ["counter", "image set", "answers", "exact", "MAE", "bias", "mean", "SD", "unparsed"],
        rows)


def write_report(out: Path, summary: dict[str, Any]) -> Path:
    """``report.md`` (targets, code, blobs, links to every plot) and ``readme_tables.md``."""
    m = summary["machine"]
    where = (f"Measured {m['when']} on {m['cpus']} cores ({m['machine']}), load "
             f"{' / '.join(map(str, m['load']))}, Python {m['python']}.")
    target_rows = [(t["figure"], t["value"], t["target"], t["status"])
                   for t in summary["targets"]]
    lines = ["# bia benchmarks\n", where + "\n", "## Targets\n",
             report.markdown_table(["figure", "value", "target", "status"], target_rows)]
    differ = [t for t in summary["targets"] if t.get("differ")]
    for row in differ:
        lines.append("Tasks where the harness and plain execution differ: "
                     + ", ".join(row["differ"]) + "\n")
    lines += ["\n## Code: pass@1\n", code_table(summary),
              f"\nPublished rows: {LEADERBOARD_SOURCE}.\n"]
    for run in summary["code"].get("models", []):
        folder = f"code/{run['suite']}_{run['model']}"
        lines.append(f"- {run['model']} on {run['suite']}: [report]({folder}/report.md)")
    lines += ["\n## Blob counting\n", blob_table(summary)]
    for counter in sorted({g["counter"] for g in (summary.get("blobs") or {}).get("groups", [])}):
        safe = "".join(c if c.isalnum() or c in "_.-" else "_" for c in counter)
        lines.append(f"\n![Bland-Altman {counter}](blobs/bland_altman_{safe}.png)")
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    (out / "readme_tables.md").write_text(
        "<!-- generated by `bia bench all`; " + where + " -->\n\n### Code\n\n"
        + code_table(summary) + f"\nPublished rows: {LEADERBOARD_SOURCE}.\n\n### Blob counting\n\n"
        + blob_table(summary))
    return path


def fill_readme(readme: str | os.PathLike[str], summary: dict[str, Any]) -> bool:
    """Replace the generated tables in ``readme`` (between ``<!-- bench:code ... -->`` and
    ``<!-- /bench:code -->``, likewise ``bench:blobs``) with this run's. True if it changed."""
    import re

    path = Path(readme)
    text = path.read_text(encoding="utf-8")
    new = text
    for name, table in (("code", code_table(summary)), ("blobs", blob_table(summary))):
        pattern = re.compile(rf"(<!-- bench:{name}[^>]*-->\n)(.*?)(<!-- /bench:{name} -->)",
                             re.DOTALL)
        new = pattern.sub(lambda m, t=table: m.group(1) + t + m.group(3), new)
    if new != text:
        path.write_text(new, encoding="utf-8")
    return new != text
