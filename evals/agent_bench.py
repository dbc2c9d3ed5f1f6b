"""Agent tool-use benchmark: does the agent pick the right tools, with the right arguments, and
reach the right measurement?

For each request of :mod:`evals.agent_tasks` an *answerer* gets the request and a fresh
workspace over the generated images, and returns what it said and which tools it called
(``answer(request, workspace) -> AgentAnswer``; returning plain text means "take the calls from
the workspace's log"). Scores per request:

* tool choice: every expected step is matched, in order, by a call of an acceptable tool
  (extra calls are allowed: denoising first is not wrong);
* arguments: the matched calls refer to the right file and carry the numbers the user gave;
* end to end: the measurement left in the workspace (the last label image or table) is within
  the request's tolerance of the ground truth;
* seconds per request.

Requests whose steps no registered tool can do are reported as not applicable, so the score of
today's registry is not mixed with tools still to come.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from evals import report
from evals.agent_tasks import AgentRequest, Outcome, Step, build_requests, write_images
from evals.runner import ResultStore, run_jobs
from tools.errors import BiaError, InputError
from tools.registry import Registry
from tools.workspace import Workspace


@dataclass
class ToolCall:
    """One call an answerer made (or tried)."""

    name: str
    arguments: dict[str, Any]
    ok: bool = True
    error: str = ""
    outputs: list[str] = field(default_factory=list)


@dataclass
class AgentAnswer:
    """What an answerer returns: its final text and its calls in order."""

    text: str
    calls: list[ToolCall]


Answerer = Callable[[str, Workspace], "AgentAnswer | str"]


def load_registry() -> Registry:
    """The registry with every tool module imported."""
    import tools

    return tools.load_all()


# -- matching -------------------------------------------------------------------------------


def _category(registry: Registry, name: str) -> str | None:
    return registry.tools[name].category if name in registry else None


def step_accepts(step: Step, name: str, registry: Registry) -> bool:
    """Whether a call of tool ``name`` does this step."""
    return name in step.tools or (_category(registry, name) in step.categories)


def available_tool(step: Step, registry: Registry) -> str | None:
    """The registered tool the oracle would use for ``step``, or None."""
    for name in step.tools:
        if name in registry:
            return name
    for category in step.categories:
        found = registry.by_category(category)
        if found:
            return found[0].name
    return None


def applicable(request: AgentRequest, registry: Registry) -> bool:
    """Whether every step of ``request`` can be done with the registered tools."""
    return all(available_tool(step, registry) for step in request.steps)


def match_steps(steps: Sequence[Step], calls: Sequence[ToolCall],
                registry: Registry) -> list[int | None]:
    """For each step, the index of the call that does it (in order), or None."""
    matched: list[int | None] = []
    position = 0
    for step in steps:
        found = next((i for i in range(position, len(calls))
                      if step_accepts(step, calls[i].name, registry)), None)
        matched.append(found)
        if found is not None:
            position = found + 1
    return matched


def refers_to(value: Any, stem: str) -> bool:
    """Whether an argument names the file ``stem`` or an artifact derived from it."""
    if not isinstance(value, str) or not value:
        return False
    base = Path(value).name.lower()
    return base.startswith(stem.lower())


def check_arguments(step: Step, call: ToolCall | None) -> tuple[int, int]:
    """(key arguments right, key arguments expected) for one step."""
    total = len(step.args)
    if call is None:
        return 0, total
    right = 0
    for key, expected in step.args.items():
        if key == "input":
            right += any(refers_to(v, expected) for v in call.arguments.values())
            continue
        given = call.arguments.get(key)
        if isinstance(expected, float | int) and isinstance(given, float | int | str):
            with contextlib.suppress(ValueError):
                right += abs(float(given) - float(expected)) <= 1e-6 * max(1.0, abs(expected))
        else:
            right += given == expected
    return right, total


# -- measuring ------------------------------------------------------------------------------

_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?")


def _produced(workspace: Workspace, calls: Sequence[ToolCall]) -> list[Any]:
    names = [n for c in workspace.calls for n in c.outputs]
    names += [n for c in calls for n in c.outputs if n not in names]
    return [workspace.artifacts[n] for n in names if n in workspace.artifacts]


def measure(outcome: Outcome, workspace: Workspace, calls: Sequence[ToolCall],
            text: str) -> float | None:
    """The value the answerer's analysis left for ``outcome`` (see :class:`Outcome`)."""
    produced = _produced(workspace, calls)
    labels = [a for a in produced if a.kind == "labels"]
    tables = [a for a in produced if a.kind == "table"]
    if outcome.kind == "count":
        if labels:
            data = labels[-1].data
            return float(np.unique(data[data != 0]).size)
        if tables:
            return float(len(tables[-1].data))
        numbers = _NUMBER.findall(text or "")
        return float(numbers[0]) if len(set(numbers)) == 1 else None
    if outcome.kind == "n_tracks":
        for table in reversed(tables):
            for column in ("track_id", "track", "label"):
                if column in table.data:
                    return float(table.data[column].nunique())
        if labels and labels[-1].data.ndim == 3:
            data = labels[-1].data
            return float(np.unique(data[data != 0]).size)
        return None
    if not tables:
        return None
    frame = tables[-1].data
    if outcome.kind == "mean_intensity":
        column = "mean_intensity" if "mean_intensity" in frame else next(
            (c for c in frame.columns if "intensity" in c and "mean" in c), None)
    else:
        from tools.measure import unit_suffix

        wanted = f"area_{unit_suffix(outcome.unit, 2)}"
        areas = [c for c in frame.columns if str(c).startswith("area")]
        column = wanted if wanted in frame else (areas[0] if len(areas) == 1 else None)
    if column is None:
        return None
    return float(np.mean(frame[column]))


# -- answerers ------------------------------------------------------------------------------


def _substitute(value: Any, file: str, previous: str | None) -> Any:
    if value == "$file":
        return file
    if value == "$prev":
        return previous or file
    return value


def oracle_answerer(registry: Registry | None = None) -> Answerer:
    """A scripted agent that runs each step's preferred registered tool with the oracle's
    arguments: the upper bound of today's tools, and a check that the dataset is reachable."""

    def answer(request: str, workspace: Workspace) -> AgentAnswer:
        reg = registry or load_registry()
        task = _REQUEST_BY_TEXT[request]
        calls: list[ToolCall] = []
        previous: str | None = None
        for step in task.steps:
            name = available_tool(step, reg)
            if name is None:
                break
            arguments = {k: _substitute(v, task.file, previous) for k, v in step.oracle.items()}
            try:
                result = reg.run(workspace, name, arguments)
            except BiaError as exc:
                calls.append(ToolCall(name, arguments, ok=False, error=str(exc)))
                break
            calls.append(ToolCall(name, result.arguments, outputs=list(result.outputs)))
            previous = result.outputs[0] if result.outputs else previous
        return AgentAnswer("done", calls)

    return answer


_REQUEST_BY_TEXT: dict[str, AgentRequest] = {}


def agent_answerer(spec: str, base_url: str | None = None, *,
                   chat_model: tuple[Any, Any] | None = None) -> Answerer:
    """The real agent (:mod:`agent`) with backend ``spec`` (``embedded``, ``0.5b``, ``1.5b``,
    a ``.gguf`` path, or a model on an OpenAI-compatible server at ``base_url``), or with a
    ready ``(chat_model, model_info)`` pair."""
    try:
        from agent.backends import make_chat_model
        from agent.planner import Agent
        from agent.session import Session
    except ImportError as exc:
        raise InputError(
            "the agent (agent/planner.py, agent/backends.py, agent/session.py) is not available in "
            f"this build ({exc}); only the scripted oracle can be benchmarked"
        ) from exc
    model, info = chat_model or make_chat_model(spec, base_url=base_url, progress=False)

    def answer(request: str, workspace: Workspace) -> AgentAnswer:
        agent = Agent(model, session=Session(workspace, model_info=info), model_info=info)
        reply = agent.ask(request)
        calls = [
            ToolCall(e.tool, dict(e.arguments), ok=e.kind == "call",
                     error="" if e.kind == "call" else e.message, outputs=list(e.outputs))
            for e in reply.events if e.tool
        ]
        return AgentAnswer(reply.text, calls)

    return answer


def agent_answer_text(spec: str, prompt: str, image: np.ndarray) -> str:
    """The agent's answer to ``prompt`` about ``image`` (for the blob-counting baseline)."""
    from tools import io
    from tools.types import ImageMeta, default_axes

    answerer = _cached_agent(spec, None)
    with tempfile.TemporaryDirectory(prefix="bia-count-") as folder:
        io.write_image(Path(folder) / "image.tif", image, ImageMeta(axes=default_axes(image.ndim)))
        workspace = Workspace([folder], output_root=Path(folder) / "out")
        result = answerer(f"{prompt} The image is image.tif.", workspace)
        return result if isinstance(result, str) else result.text


@functools.cache
def _cached_agent(spec: str, base_url: str | None) -> Answerer:
    return agent_answerer(spec, base_url)


def make_answerer(spec: str, base_url: str | None = None) -> Answerer:
    """``oracle`` (the scripted agent) or an agent backend spec."""
    return oracle_answerer() if spec == "oracle" else _cached_agent(spec, base_url)


# -- running --------------------------------------------------------------------------------


def score(request: AgentRequest, answer: AgentAnswer | str, workspace: Workspace,
          registry: Registry, seconds: float) -> dict[str, Any]:
    """The result record of one request."""
    if isinstance(answer, str):
        calls = [ToolCall(c.tool, dict(c.arguments), outputs=list(c.outputs))
                 for c in workspace.calls]
        text = answer
    else:
        calls, text = answer.calls, answer.text
    matched = match_steps(request.steps, calls, registry)
    args = [check_arguments(step, calls[i] if i is not None else None)
            for step, i in zip(request.steps, matched, strict=True)]
    right, total = sum(a for a, _ in args), sum(t for _, t in args)
    measured = measure(request.outcome, workspace, calls, text)
    return {
        "request_id": request.id, "request": request.request,
        "expected_tools": [list(s.tools) for s in request.steps],
        "called": [c.name for c in calls], "failed_calls": sum(not c.ok for c in calls),
        "steps_matched": sum(i is not None for i in matched), "steps": len(request.steps),
        "tool_choice": all(i is not None for i in matched),
        "args_right": right, "args_total": total, "arguments": right == total,
        "expected": request.outcome.value, "measured": measured,
        "outcome": request.outcome.kind, "success": request.outcome.accepts(measured),
        "seconds": round(seconds, 3), "answer": (text or "")[:500],
    }


def run_request(job: dict[str, Any]) -> dict[str, Any]:
    """Answer and score one request; a module-level function for process pools."""
    registry = load_registry()
    truths = write_images(job["images"])
    requests = {r.id: r for r in build_requests(truths)}
    _REQUEST_BY_TEXT.update({r.request: r for r in requests.values()})
    request = requests[job["request_id"]]
    answerer = make_answerer(job["backend"], job.get("base_url"))
    with tempfile.TemporaryDirectory(prefix="bia-agent-bench-") as out:
        workspace = Workspace([job["images"]], output_root=out)
        start = time.perf_counter()
        try:
            answer: AgentAnswer | str = answerer(request.request, workspace)
            error = None
        except InputError:
            raise
        except Exception as exc:  # the agent failing on one request is a failed request
            answer, error = AgentAnswer("", []), f"{type(exc).__name__}: {exc}"
        seconds = time.perf_counter() - start
        record = score(request, answer, workspace, registry, seconds)
    record["backend"] = job["backend"]
    if error:
        record["error"] = error
    return record


def run_agent_bench(
    out_dir: str | os.PathLike[str],
    backends: Sequence[str] = ("oracle",),
    *,
    base_url: str | None = None,
    limit: int | None = None,
    workers: int = 1,
    scheduler: str | None = None,
    answerers: Mapping[str, Answerer] | None = None,
) -> dict[str, Any]:
    """Run every applicable request for each backend; write results, summary and report.

    Parameters
    ----------
    out_dir : path-like
        Results folder; the images are generated in ``out_dir/images``.
    backends : sequence of str
        ``oracle`` (scripted) and/or agent backend specs.
    base_url : str, optional
        OpenAI-compatible server for model backends.
    limit : int, optional
        Only the first ``limit`` requests (for a quick look).
    workers : int
        Local worker processes (each loads its own model: keep 1 for embedded models).
    scheduler : str, optional
        Dask scheduler address.
    answerers : mapping, optional
        Extra answerers by backend name, run in this process (tests, custom agents).
    """
    out = Path(out_dir)
    images = out / "images"
    truths = write_images(images)
    requests = build_requests(truths)[:limit]
    _REQUEST_BY_TEXT.update({r.request: r for r in requests})
    registry = load_registry()
    usable = [r for r in requests if applicable(r, registry)]
    store = ResultStore(out / "results.jsonl", ("backend", "request_id"))
    answerers = dict(answerers or {})
    for backend in backends:
        todo = [r for r in usable if {"backend": backend, "request_id": r.id} not in store]
        if backend in answerers:
            for request in todo:
                with tempfile.TemporaryDirectory(prefix="bia-agent-bench-") as tmp:
                    workspace = Workspace([images], output_root=tmp)
                    start = time.perf_counter()
                    answer = answerers[backend](request.request, workspace)
                    record = score(request, answer, workspace, registry,
                                   time.perf_counter() - start)
                store.append({**record, "backend": backend})
            continue
        jobs = [{"backend": backend, "request_id": r.id, "images": str(images),
                 "base_url": base_url} for r in todo]
        for record in run_jobs(run_request, jobs, workers=workers, scheduler=scheduler,
                               description=f"agent bench: {backend}"):
            store.append(record)
    summary = summarize(store.records, backends, len(requests), len(usable))
    summary["not_applicable"] = [
        {"request_id": r.id, "needs": [list(s.tools) for s in r.steps
                                       if available_tool(s, registry) is None]}
        for r in requests if r not in usable
    ]
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    write_report(out, summary)
    (out / "requests.json").write_text(json.dumps(
        [{**asdict(r), "steps": [asdict(s) for s in r.steps]} for r in requests], indent=1,
        default=str))
    return summary


def summarize(records: Sequence[dict[str, Any]], backends: Sequence[str], n_requests: int,
              n_usable: int) -> dict[str, Any]:
    """Accuracy per backend, overall and per outcome kind."""
    by_backend: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        by_backend[record["backend"]].append(record)
    rows = []
    for backend in backends:
        mine = by_backend.get(backend, [])
        if not mine:
            continue
        rows.append({
            "backend": backend, "requests": len(mine),
            "tool_choice": float(np.mean([r["tool_choice"] for r in mine])),
            "arguments": float(np.mean([r["arguments"] for r in mine])),
            "argument_share": float(sum(r["args_right"] for r in mine)
                                    / max(1, sum(r["args_total"] for r in mine))),
            "success": float(np.mean([r["success"] for r in mine])),
            "seconds_per_request": float(np.mean([r["seconds"] for r in mine])),
            "by_outcome": {
                kind: float(np.mean([r["success"] for r in mine if r["outcome"] == kind]))
                for kind in sorted({r["outcome"] for r in mine})
            },
        })
    return {"requests": n_requests, "applicable": n_usable, "backends": rows}


def write_report(out: Path, summary: dict[str, Any]) -> Path:
    """``report.md`` with the per-backend table and a success plot."""
    rows = [(b["backend"], b["requests"], b["tool_choice"], b["arguments"], b["success"],
             b["seconds_per_request"]) for b in summary["backends"]]
    if summary["backends"]:
        report.bar_chart([b["backend"] for b in summary["backends"]],
                         [b["success"] for b in summary["backends"]], out / "success.png",
                         title="End-to-end success", ylabel="share of requests")
    lines = [
        "# Agent tool use\n",
        f"{summary['requests']} requests, {summary['applicable']} applicable with the tools "
        "registered now.\n",
        report.markdown_table(["backend", "requests", "tool choice", "arguments",
                               "end-to-end success", "s / request"], rows),
    ]
    if summary["backends"]:
        lines.append("\n![success](success.png)\n")
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path
