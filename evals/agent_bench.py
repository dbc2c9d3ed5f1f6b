"""Agent benchmark: does the agent pick the right tools, with the right arguments and inputs,
reach the right measurement, and say it?

For each request of :mod:`evals.agent_tasks` an *answerer* gets the request and a workspace over
the benchmark's files (one workspace per conversation: follow-ups see the earlier artifacts) and
returns an :class:`AgentAnswer` (or plain text: then its calls are taken from the workspace's
log). Every request is scored end to end, and a failed one gets the first failure class of its
pipeline:

``runtime_error``  the answerer raised, a call failed, or the run stopped;
``invalid_plan``   no call ran: the plan was refused by the checker (after its re-plan);
``wrong_tool``     an expected step is done by no call (in order; extra calls are allowed);
``wrong_argument`` a number the user gave is missing or different;
``wrong_wiring``   right tools, wrong inputs: a call does not work on the request's file, or a
                   step does not take the previous step's output (the denoised image must be
                   the one segmented);
``wrong_value``    the analysis ran but the value is outside the tolerance of the truth;
``no_number``      the value is right but the reply's text does not state it;
``tool_on_question`` a plain question ran a tool;
``traceback``, ``unclear_message``, ``answered_anyway``  a bad request's reply shows a
                   traceback, does not name the problem, or answers a number anyway.

Per request the record also holds the seconds, the model's prompt and generated tokens, both
speeds, model calls and re-plans (from the planner's ``Reply.stats``). Requests whose steps no
registered tool can do are reported as not applicable, so the score of today's registry is not
mixed with tools still to come.

Run: ``python -m evals.agent_bench --backends oracle 1.5b [--subset v1] [--max-seconds 540]``
(or ``bia bench agent ...``); results are resumable (``results.jsonl``).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import re
import statistics
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from evals import report
from evals.agent_tasks import (
    AgentRequest,
    Outcome,
    Step,
    build_requests,
    file_variable,
    select,
    write_images,
)
from evals.runner import ResultStore, run_jobs
from tools.errors import InputError
from tools.registry import Registry, python_identifier
from tools.workspace import Workspace

FAILURE_CLASSES = ("runtime_error", "invalid_plan", "wrong_tool", "wrong_argument", "wrong_wiring",
                   "wrong_value", "no_number", "tool_on_question", "traceback",
                   "unclear_message", "answered_anyway")
STAT_FIELDS = ("prompt_tokens", "generated_tokens", "prompt_tps", "generate_tps", "replans")


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
    """What an answerer returns.

    Attributes
    ----------
    text : str
        The reply shown to the user.
    calls : list of ToolCall or None
        The calls in order; None: take them from the workspace's log.
    values : list of float or None
        The numbers the answer states, in order (the planner's ``Reply.values``); None: the
        answerer does not say, and the value is read from the artifacts it left.
    stats : dict
        ``prompt_tokens``, ``generated_tokens``, ``prompt_tps``, ``generate_tps``, ``replans``.
    model_calls : int or None
        Model calls for this request.
    stopped : str
        Why the answerer stopped early ("" when it finished).
    plan : str
        The plan that ran, as text ("" when none passed the check or the answerer has none).
    """

    text: str
    calls: list[ToolCall] | None = None
    values: list[float] | None = None
    stats: dict[str, Any] = field(default_factory=dict)
    model_calls: int | None = None
    stopped: str = ""
    plan: str = ""


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
    """The registered tool that can do ``step`` (the preferred one first), or None."""
    for name in step.tools:
        if name in registry:
            return name
    for category in step.categories:
        found = registry.by_category(category)
        if found:
            return found[0].name
    return None


def _gold_tools(request: AgentRequest) -> list[str]:
    return re.findall(r"=\s*([A-Za-z_]\w*)\(", request.gold)


def applicable(request: AgentRequest, registry: Registry) -> bool:
    """Whether the steps and the gold plan of ``request`` use registered tools only."""
    return (all(available_tool(step, registry) for step in request.steps)
            and all(name in registry for name in _gold_tools(request)))


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


def names_file(value: Any, stem: str) -> bool:
    """Whether an argument names the file ``stem`` itself (path, file name, stem or variable)."""
    if not isinstance(value, str) or not value:
        return False
    name = Path(value.replace("\\", "/")).name
    return name.split(".")[0].lower() == stem.lower() or value == file_variable(stem)


def _argument_strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [v for v in value if isinstance(v, str)]
    return []


def derivations(calls: Sequence[ToolCall]) -> list[set[Any]]:
    """For each call, what its inputs come from: earlier call indices and ``"file:<stem>"``.

    An argument that is an earlier call's output derives from that call and everything it
    derives from; any other text argument is taken as a file or a file's artifact.
    """
    made_by: dict[str, int] = {}
    sources: list[set[Any]] = []
    for i, call in enumerate(calls):
        mine: set[Any] = set()
        for value in call.arguments.values():
            for text in _argument_strings(value):
                if text in made_by:
                    j = made_by[text]
                    mine |= {j} | sources[j]
                else:
                    mine.add("file:" + Path(text.replace("\\", "/")).name.split(".")[0].lower())
                    mine.add("file:" + text.lower())
        sources.append(mine)
        for name in call.outputs:
            made_by[name] = i
    return sources


def derives_from_file(sources: set[Any], stem: str) -> bool:
    """Whether a call's sources include the file ``stem``."""
    return f"file:{stem.lower()}" in sources or f"file:{file_variable(stem).lower()}" in sources


def check_arguments(step: Step, call: ToolCall | None) -> tuple[int, int]:
    """(numbers right, numbers expected) of the values the user gave for one step."""
    given_args = {k: v for k, v in step.args.items() if k != "input"}
    total = len(given_args)
    if call is None:
        return 0, total
    right = 0
    for key, expected in given_args.items():
        given = call.arguments.get(key)
        if isinstance(expected, float | int) and isinstance(given, float | int | str):
            with contextlib.suppress(ValueError):
                right += abs(float(given) - float(expected)) <= 1e-6 * max(1.0, abs(expected))
        else:
            right += given == expected
    return right, total


def check_wiring(steps: Sequence[Step], matched: Sequence[int | None], offset: int,
                 sources: Sequence[set[Any]]) -> bool:
    """Whether each matched call works on its step's file and, where the step takes the
    previous step's output, on that output (``offset``: index of this turn's first call in
    ``sources``)."""
    previous: int | None = None
    for step, index in zip(steps, matched, strict=True):
        if index is None:
            return False
        mine = sources[offset + index]
        stem = step.args.get("input")
        if stem and not derives_from_file(mine, stem):
            return False
        if previous is not None and "$prev" in step.oracle.values() and (
                offset + previous) not in mine:
            return False
        previous = index
    return True


# -- measuring ------------------------------------------------------------------------------

_NUMBER = re.compile(r"(?<![\w.])[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?|(?<![\w.,])[-+]?\d+(?:\.\d+)?")
_TRACEBACK = re.compile(r"Traceback \(most recent call last\)|File \"[^\"]+\", line \d+")


def numbers_in(text: str) -> list[float]:
    """The numbers written in ``text`` (``1,234.5`` is one number)."""
    return [float(m.replace(",", "")) for m in _NUMBER.findall(text or "")]


def states(outcome: Outcome, text: str) -> bool:
    """Whether the text states a number the outcome accepts (rounded as people write it)."""
    return any(outcome.accepts(n) for n in numbers_in(text))


def _produced(workspace: Workspace, calls: Sequence[ToolCall]) -> list[Any]:
    names = [n for c in calls for n in c.outputs]
    return [workspace.artifacts[n] for n in names if n in workspace.artifacts]


def _filtered(frame: Any, where: str) -> Any:
    match = re.fullmatch(r"\s*(\w+)\s*(<=|>=|<|>)\s*([-+\d.]+)\s*", where)
    if not match or match.group(1) not in frame:
        return None
    column, op, number = frame[match.group(1)], match.group(2), float(match.group(3))
    keep = {"<": column < number, "<=": column <= number, ">": column > number,
            ">=": column >= number}[op]
    return frame[keep]


def measure_artifacts(outcome: Outcome, workspace: Workspace, calls: Sequence[ToolCall],
                      text: str) -> float | None:
    """The value the analysis left in the workspace for ``outcome`` (answerers that do not
    report their values): the last label image or table of ``calls``."""
    produced = _produced(workspace, calls)
    labels = [a for a in produced if a.kind == "labels"]
    tables = [a for a in produced if a.kind == "table"]
    if outcome.kind == "count" and outcome.where:
        tables = tables or [a for a in workspace if a.kind == "table"]
        frame = _filtered(tables[-1].data, outcome.where) if tables else None
        return None if frame is None else float(len(frame))
    if outcome.kind == "count":
        if labels:
            data = labels[-1].data
            return float(np.unique(data[data != 0]).size)
        if tables:
            return float(len(tables[-1].data))
        numbers = numbers_in(text)
        return numbers[0] if len(set(numbers)) == 1 else None
    if outcome.kind == "n_tracks":
        for table in reversed(tables):
            for column in ("track_id", "track", "label"):
                if column in table.data:
                    return float(table.data[column].nunique())
        return None
    if not tables:
        return None
    frame = tables[-1].data
    column = outcome.column if outcome.column in frame else None
    if column is None and outcome.kind == "mean_intensity":
        column = next((c for c in frame.columns if "intensity" in c and "mean" in c), None)
    if column is None:
        return None
    return float(np.mean(frame[column]))


# -- scoring --------------------------------------------------------------------------------


def _calls_of(answer: AgentAnswer, workspace: Workspace, logged_before: int) -> list[ToolCall]:
    if answer.calls is not None:
        return list(answer.calls)
    return [ToolCall(c.tool, dict(c.arguments), outputs=list(c.outputs))
            for c in workspace.calls[logged_before:]]


def score(request: AgentRequest, answer: AgentAnswer | str, workspace: Workspace,
          registry: Registry, seconds: float, *, history: Sequence[ToolCall] = (),
          logged_before: int = 0, error: str = "") -> dict[str, Any]:
    """The result record of one request.

    Parameters
    ----------
    history : sequence of ToolCall
        The calls of the conversation's earlier turns (their outputs may be this turn's
        inputs).
    logged_before : int
        Length of the workspace's call log before this turn.
    error : str
        The answerer's exception, if it raised.
    """
    if isinstance(answer, str):
        answer = AgentAnswer(answer)
    calls = _calls_of(answer, workspace, logged_before)
    text = answer.text or ""
    matched = match_steps(request.steps, calls, registry)
    arg_counts = [check_arguments(step, calls[i] if i is not None else None)
                  for step, i in zip(request.steps, matched, strict=True)]
    right, total = sum(a for a, _ in arg_counts), sum(t for _, t in arg_counts)
    sources = derivations([*history, *calls])
    wiring = check_wiring(request.steps, matched, len(history), sources)
    outcomes = request.outcomes
    if answer.values is not None:
        values = [float(v) if v is not None else None for v in answer.values]
        measured = [values[i] if i < len(values) else None for i in range(len(outcomes))]
        if len(outcomes) == 1 and 1 < len(values) <= 3:
            # One value asked for, a few given ("3 objects, mean area 70 px²" for "measure
            # their areas"): the one of the asked kind counts, wherever it stands.
            measured = [next((v for v in values if outcomes[0].accepts(v)), values[0])]
    else:
        measured = [measure_artifacts(outcomes[0], workspace, calls, text)] + [None] * (
            len(outcomes) - 1)
        if len(outcomes) > 1:  # text-only answerers: the numbers of the text, in order
            found = numbers_in(text)
            measured = [found[i] if i < len(found) else None for i in range(len(outcomes))]
    failed_calls = [c for c in calls if not c.ok]
    has_traceback = bool(_TRACEBACK.search(text))
    kind = request.kind
    stated = [states(o, text) for o in outcomes] if kind == "analysis" else []
    value_right = kind == "analysis" and all(
        o.accepts(m) for o, m in zip(outcomes, measured, strict=True))
    if kind == "analysis":
        success = value_right and all(stated) and not has_traceback
    elif kind == "question":
        success = not calls and bool(text.strip()) and not has_traceback and not error
    else:
        named = any(word.lower() in text.lower() for word in request.problem)
        success = (bool(text.strip()) and named and not has_traceback and not answer.values
                   and not error)
    record: dict[str, Any] = {
        "request_id": request.id, "request": request.request, "task": request.task,
        "subset": request.subset, "kind": kind, "conversation": request.conversation,
        "turn": request.turn,
        "expected_tools": [list(s.tools) for s in request.steps],
        "called": [c.name for c in calls], "failed_calls": len(failed_calls),
        "steps_matched": sum(i is not None for i in matched), "steps": len(request.steps),
        "tool_choice": all(i is not None for i in matched),
        "args_right": right, "args_total": total, "arguments": right == total,
        "wiring": wiring,
        "expected": [o.value for o in outcomes], "measured": measured,
        "values": answer.values,
        "number_stated": all(stated), "outcome": request.outcome.kind, "success": success,
        "failure": None if success else classify(request, calls, matched, right == total,
                                                   wiring, value_right, failed_calls,
                                                   has_traceback, answer, error),
        "seconds": round(seconds, 3), "answer": text[:600], "plan": answer.plan,
        "stopped": answer.stopped,
        "model_calls": answer.model_calls,
        **{k: answer.stats.get(k) for k in STAT_FIELDS},
    }
    if error:
        record["error"] = error
    return record


def classify(request: AgentRequest, calls: Sequence[ToolCall], matched: Sequence[int | None],
             arguments: bool, wiring: bool, value_right: bool,
             failed_calls: Sequence[ToolCall], has_traceback: bool, answer: AgentAnswer,
             error: str) -> str:
    """The first failure of a failed request's pipeline (see the module docstring)."""
    if request.kind == "question":
        if calls:
            return "tool_on_question"
        return "traceback" if has_traceback else ("runtime_error" if error
                                                  else "unclear_message")
    if request.kind == "bad":
        if has_traceback or error:
            return "traceback"
        if answer.values:
            return "answered_anyway"
        return "unclear_message"
    if error:
        return "runtime_error"
    if not calls and answer.stopped:
        return "invalid_plan"
    if not all(i is not None for i in matched):
        return "wrong_tool"
    if not arguments:
        return "wrong_argument"
    if not wiring:
        return "wrong_wiring"
    if failed_calls or answer.stopped or has_traceback:
        return "runtime_error"
    return "wrong_value" if not value_right else "no_number"


# -- answerers ------------------------------------------------------------------------------

_REQUEST_BY_TEXT: dict[str, AgentRequest] = {}


def _fill_gold(gold: str, workspace: Workspace) -> str:
    """A follow-up's gold plan with ``{table}`` / ``{labels}`` naming the session's latest."""
    for kind in ("table", "labels"):
        if "{" + kind + "}" in gold:
            latest = [a for a in workspace if a.kind == kind]
            name = python_identifier(latest[-1].name) if latest else kind
            gold = gold.replace("{" + kind + "}", name)
    return gold


def planner_answerer(model: Any, info: Any, *, plan_for: Callable[[str, Workspace], str] | None
                     = None) -> Answerer:
    """The planner (:class:`agent.planner.Agent`) over ``model``; one agent per workspace, so
    the turns of a conversation share its session.

    ``plan_for(request, workspace)``, when given, is what a scripted ``model`` replies (the
    oracle): set before each request.
    """
    from agent.planner import Agent
    from agent.session import Session

    state: dict[str, Any] = {"workspace": None, "agent": None}

    def answer(request: str, workspace: Workspace) -> AgentAnswer:
        if state["workspace"] is not workspace:
            session = Session(workspace, model_info=info)
            state.update(workspace=workspace, agent=Agent(model, session=session,
                                                          model_info=info))
        if plan_for is not None:
            state["plan"] = plan_for(request, workspace)
        before = len(workspace.calls)
        reply = state["agent"].ask(request)
        calls = [ToolCall(c.tool, dict(c.arguments), outputs=list(c.outputs))
                 for c in workspace.calls[before:]]
        calls += [ToolCall(e.tool, dict(e.arguments or {}), ok=False, error=e.message)
                  for e in reply.events if e.tool and e.kind != "call"]
        numbers = [float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None
                   for v in reply.values]
        return AgentAnswer(reply.text, calls, values=numbers,
                           stats=dict(reply.stats or {}), model_calls=reply.model_calls,
                           stopped=reply.stopped or "",
                           plan=reply.plan.render() if reply.plan is not None else "")

    answer.state = state  # type: ignore[attr-defined]
    return answer


def oracle_answerer() -> Answerer:
    """The gold plans, replayed by a scripted model through the real planner: the upper bound
    of today's tools and planner, and a check that the dataset is reachable."""
    try:
        import agent.planner  # noqa: F401
        from agent.backends import ModelInfo, ScriptedChatModel
    except ImportError as exc:
        raise InputError(
            f"the oracle replays gold plans through agent/planner.py, which this build lacks "
            f"({exc}); merge the agent-v2 branch"
        ) from exc

    current: dict[str, str] = {}

    def plan_for(request: str, workspace: Workspace) -> str:
        current["plan"] = _fill_gold(_REQUEST_BY_TEXT[request].gold, workspace)
        return current["plan"]

    def reply(*_prompt: Any) -> str:  # (system, user) text
        return current["plan"]

    # Every model call (a re-plan too) gets the current request's gold plan.
    model = ScriptedChatModel(replies=[reply] * 100_000)
    return planner_answerer(model, ModelInfo("scripted", "oracle"), plan_for=plan_for)


def agent_answerer(spec: str, base_url: str | None = None, *,
                   chat_model: tuple[Any, Any] | None = None) -> Answerer:
    """The planner with backend ``spec`` (``embedded``, ``0.5b``, ``1.5b``, a ``.gguf`` path,
    or a model on an OpenAI-compatible server at ``base_url``), or with a ready
    ``(chat_model, model_info)`` pair."""
    try:
        import agent.planner  # noqa: F401
        from agent.backends import make_chat_model
    except ImportError as exc:
        raise InputError(
            f"the planner (agent/planner.py) is not available in this build ({exc}); merge "
            "the agent-v2 branch"
        ) from exc
    model, info = chat_model or make_chat_model(spec, base_url=base_url, progress=False)
    return planner_answerer(model, info)


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


@functools.cache
def _cached_oracle() -> Answerer:
    return oracle_answerer()


def make_answerer(spec: str, base_url: str | None = None) -> Answerer:
    """``oracle`` (gold plans through the planner) or an agent backend spec."""
    return _cached_oracle() if spec == "oracle" else _cached_agent(spec, base_url)


# -- running --------------------------------------------------------------------------------


def units(requests: Sequence[AgentRequest]) -> list[list[AgentRequest]]:
    """The requests grouped into runs of one session: a conversation's turns in order, every
    other request alone; in the requests' order."""
    out: list[list[AgentRequest]] = []
    by_conversation: dict[str, list[AgentRequest]] = {}
    for request in requests:
        if not request.conversation:
            out.append([request])
        elif request.conversation in by_conversation:
            by_conversation[request.conversation].append(request)
        else:
            by_conversation[request.conversation] = [request]
            out.append(by_conversation[request.conversation])
    for unit in out:
        unit.sort(key=lambda r: r.turn)
    return out


def run_unit_with(answerer: Answerer, unit: Sequence[AgentRequest], images: Path,
                  registry: Registry) -> list[dict[str, Any]]:
    """Run one session's requests in order with ``answerer`` and score each."""
    records = []
    with tempfile.TemporaryDirectory(prefix="bia-agent-bench-") as out:
        workspace = Workspace([images], output_root=out)
        history: list[ToolCall] = []
        for request in unit:
            before = len(workspace.calls)
            start = time.perf_counter()
            error = ""
            try:
                answer: AgentAnswer | str = answerer(request.request, workspace)
            except InputError:
                raise
            except Exception as exc:  # the agent failing on one request is a failed request
                answer, error = AgentAnswer(""), f"{type(exc).__name__}: {exc}"
            seconds = time.perf_counter() - start
            record = score(request, answer, workspace, registry, seconds, history=history,
                           logged_before=before, error=error)
            records.append(record)
            if isinstance(answer, AgentAnswer) and answer.calls is not None:
                history += answer.calls
            else:
                history += [ToolCall(c.tool, dict(c.arguments), outputs=list(c.outputs))
                            for c in workspace.calls[before:]]
    return records


def _mark_inflight(path: str | None, backend: str, request_ids: Sequence[str]) -> None:
    """Say which requests are being answered, so that a process that dies (a native crash in
    a model backend cannot be caught) leaves a record of where."""
    if path:
        Path(path).write_text(json.dumps({"backend": backend, "request_ids": list(request_ids)}))


def _record_crashed(out: Path, store: ResultStore, requests: Mapping[str, AgentRequest],
                    registry: Registry) -> None:
    """Record the requests a dead process was answering as failed (runtime_error), so that a
    resumed run goes on instead of crashing on them again."""
    inflight = out / "inflight.json"
    if not inflight.exists():
        return
    marker = json.loads(inflight.read_text())
    for request_id in marker["request_ids"]:
        key = {"backend": marker["backend"], "request_id": request_id}
        if key in store or request_id not in requests:
            continue
        with tempfile.TemporaryDirectory(prefix="bia-agent-bench-") as tmp:
            record = score(requests[request_id], AgentAnswer(""), Workspace([tmp]), registry,
                           0.0, error="the process died while answering this session's "
                           "requests (a native crash in the model backend)")
        store.append({**record, "backend": marker["backend"], "crashed": True})
    inflight.unlink()


def run_unit(job: dict[str, Any]) -> dict[str, Any]:
    """Answer and score one session's requests; a module-level function for process pools."""
    _mark_inflight(job.get("inflight"), job["backend"], job["request_ids"])
    registry = load_registry()
    images = Path(job["images"])
    requests = {r.id: r for r in build_requests(write_images(images))}
    _REQUEST_BY_TEXT.update({r.request: r for r in requests.values()})
    unit = [requests[i] for i in job["request_ids"]]
    answerer = make_answerer(job["backend"], job.get("base_url"))
    records = run_unit_with(answerer, unit, images, registry)
    return {"records": [{**r, "backend": job["backend"]} for r in records]}


def run_agent_bench(
    out_dir: str | os.PathLike[str],
    backends: Sequence[str] = ("oracle",),
    *,
    base_url: str | None = None,
    limit: int | None = None,
    subset: str | None = None,
    max_seconds: float | None = None,
    report_only: bool = False,
    workers: int = 1,
    scheduler: str | None = None,
    answerers: Mapping[str, Answerer] | None = None,
) -> dict[str, Any]:
    """Run every applicable request for each backend; write results, summary and report.

    Parameters
    ----------
    out_dir : path-like
        Results folder; the files are generated in ``out_dir/images``.
    backends : sequence of str
        ``oracle`` (gold plans) and/or agent backend specs.
    base_url : str, optional
        OpenAI-compatible server for model backends.
    limit : int, optional
        Only the first ``limit`` requests of the subset (for a quick look).
    subset : str, optional
        ``v1`` (the first version's 63), ``v2``, ``analysis``, ``question``, ``bad``; all by
        default.
    max_seconds : float, optional
        Start no new session after this many seconds (chunked runs: start again to go on;
        what is done is kept in ``results.jsonl``).
    report_only : bool
        Run nothing: summarize what ``results.jsonl`` holds.
    workers : int
        Local worker processes (each loads its own model: keep 1 for embedded models).
    scheduler : str, optional
        Dask scheduler address.
    answerers : mapping, optional
        Extra answerers by backend name, run in this process (tests, custom agents).

    Returns
    -------
    dict
        The summary (also in ``summary.json``).
    """
    start = time.perf_counter()
    out = Path(out_dir)
    images = out / "images"
    truths = write_images(images)
    every = build_requests(truths)
    requests = select(every, subset)[:limit]
    _REQUEST_BY_TEXT.update({r.request: r for r in every})
    registry = load_registry()
    usable = [r for r in requests if applicable(r, registry)]
    store = ResultStore(out / "results.jsonl", ("backend", "request_id"))
    _record_crashed(out, store, {r.id: r for r in every}, registry)
    inflight = str(out / "inflight.json") if workers <= 1 and not scheduler else None
    answerers = dict(answerers or {})
    finished = True
    for backend in [] if report_only else backends:
        todo = [u for u in units(usable)
                if any({"backend": backend, "request_id": r.id} not in store for r in u)]
        if backend in answerers:
            def scripted(unit: list[AgentRequest], answerer: Answerer = answerers[backend],
                         name: str = backend) -> dict[str, Any]:
                _mark_inflight(inflight, name, [r.id for r in unit])
                return {"records": [{**r, "backend": name} for r in run_unit_with(
                    answerer, unit, images, registry)]}

            results: Any = (scripted(u) for u in todo)
        else:
            jobs = [{"backend": backend, "request_ids": [r.id for r in u],
                     "images": str(images), "base_url": base_url, "inflight": inflight}
                    for u in todo]
            results = run_jobs(run_unit, jobs, workers=workers, scheduler=scheduler,
                               description=f"agent bench: {backend}")
        for result in results:
            for record in result["records"]:
                if record not in store:
                    store.append(record)
            if inflight:
                Path(inflight).unlink(missing_ok=True)
            if max_seconds is not None and time.perf_counter() - start > max_seconds:
                finished = False
                break
        if not finished:
            break
    ids = {r.id for r in usable}
    records = [r for r in store.records if r["request_id"] in ids]
    summary = summarize(records, backends, len(requests), len(usable))
    summary["finished"] = finished
    summary["subset"] = subset or "all"
    summary["not_applicable"] = [
        {"request_id": r.id, "needs": sorted(
            {t for s in r.steps for t in s.tools[:1] if available_tool(s, registry) is None}
            | {t for t in _gold_tools(r) if t not in registry})}
        for r in requests if r not in usable
    ]
    from evals.toolbench.results import machine

    summary["machine"] = machine()
    name = "summary.json" if subset in (None, "all") else f"summary_{subset}.json"
    (out / name).write_text(json.dumps(summary, indent=2, ensure_ascii=False))
    write_report(out, summary)
    (out / "requests.json").write_text(json.dumps(
        [{**asdict(r), "kind": r.kind, "steps": [asdict(s) for s in r.steps]} for r in every],
        indent=1, default=str, ensure_ascii=False))
    return summary


def _median(values: Sequence[Any]) -> float | None:
    numbers = [float(v) for v in values if isinstance(v, int | float)]
    return float(statistics.median(numbers)) if numbers else None


def _row(backend: str, group: str, mine: Sequence[dict[str, Any]]) -> dict[str, Any]:
    analysis = [r for r in mine if r["kind"] == "analysis"]
    failures = Counter(r["failure"] for r in mine if r["failure"])
    return {
        "backend": backend, "group": group, "requests": len(mine),
        "success": float(np.mean([r["success"] for r in mine])),
        "tool_choice": float(np.mean([r["tool_choice"] for r in analysis])) if analysis
        else None,
        "arguments": float(np.mean([r["arguments"] for r in analysis])) if analysis else None,
        "wiring": float(np.mean([r["wiring"] for r in analysis])) if analysis else None,
        "failures": {c: failures.get(c, 0) for c in FAILURE_CLASSES if failures.get(c)},
        "median_seconds": _median([r["seconds"] for r in mine]),
        "mean_seconds": float(np.mean([r["seconds"] for r in mine])),
        "median_prompt_tokens": _median([r.get("prompt_tokens") for r in mine]),
        "median_generated_tokens": _median([r.get("generated_tokens") for r in mine]),
        "median_prompt_tps": _median([r.get("prompt_tps") for r in mine]),
        "median_generate_tps": _median([r.get("generate_tps") for r in mine]),
        "model_calls": sum(r.get("model_calls") or 0 for r in mine),
        "replans": sum(r.get("replans") or 0 for r in mine),
    }


def summarize(records: Sequence[dict[str, Any]], backends: Sequence[str], n_requests: int,
              n_usable: int) -> dict[str, Any]:
    """Success and failure classes per backend: overall, per subset and per request kind."""
    by_backend: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        by_backend[record["backend"]].append(record)
    rows, groups = [], []
    for backend in backends:
        mine = by_backend.get(backend, [])
        if not mine:
            continue
        row = _row(backend, "all", mine)
        row["by_outcome"] = {
            kind: float(np.mean([r["success"] for r in mine if r["outcome"] == kind]))
            for kind in sorted({r["outcome"] for r in mine})
        }
        rows.append(row)
        for key in ("subset", "kind"):
            for value in sorted({r.get(key, "v1") for r in mine}):
                groups.append(_row(backend, f"{key}={value}",
                                   [r for r in mine if r.get(key, "v1") == value]))
    return {"requests": n_requests, "applicable": n_usable, "backends": rows, "groups": groups}


def table_rows(summary: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    """The printed table: one row per backend and group."""
    rows = []
    for row in [*summary["backends"], *summary["groups"]]:
        failures = ", ".join(f"{k} {v}" for k, v in row["failures"].items()) or "-"
        tps = row["median_generate_tps"]
        rows.append((row["backend"], row["group"], row["requests"], row["success"],
                     row["median_seconds"], "-" if tps is None else round(tps, 1), failures))
    return sorted(rows, key=lambda r: (r[0], r[1] != "all", r[1]))


_HEADERS = ["backend", "group", "requests", "success", "median s", "gen tok/s", "failures"]


def write_report(out: Path, summary: dict[str, Any]) -> Path:
    """``report.md`` with the tables and ``success.png`` (success per backend and subset)."""
    groups = [g for g in summary["groups"] if g["group"].startswith("subset=")]
    if groups:
        report.bar_chart([f"{g['backend']} {g['group'][7:]}" for g in groups],
                         [g["success"] for g in groups], out / "success.png",
                         title="Agent benchmark: end-to-end success",
                         ylabel="share of requests")
    lines = [
        "# Agent benchmark\n",
        f"{summary['requests']} requests, {summary['applicable']} applicable with the tools "
        f"registered now. Machine: {summary.get('machine', '')}.\n",
        report.markdown_table(_HEADERS, table_rows(summary)),
    ]
    if groups:
        lines.append("\n![success](success.png)\n")
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path


def print_summary(summary: Mapping[str, Any], out: str | os.PathLike[str]) -> None:
    """Print the table and where the results are."""
    print(f"{summary['requests']} requests, {summary['applicable']} applicable now"
          + ("" if summary.get("finished", True) else " (stopped at --max-seconds: run again "
             "to go on)"))
    print(report.markdown_table(_HEADERS, table_rows(summary)))
    print(f"results in {out}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``bia bench agent`` that are this benchmark's own."""
    parser.add_argument("--subset", choices=["all", "v1", "v2", "v3", "v1+v2", "analysis",
                                             "question", "bad"],
                        default="all", help="v1: the first version's 63 requests; v3: held "
                                            "out, written after the planner was frozen")
    parser.add_argument("--max-seconds", type=float,
                        help="start no new request after this many seconds (resumable)")
    parser.add_argument("--report-only", action="store_true",
                        help="run nothing; summarize the results there are")


def command(args: argparse.Namespace) -> int:
    """``bia bench agent``: run, print the table, write the results."""
    summary = run_agent_bench(
        args.out, args.backends, base_url=args.base_url, limit=args.limit,
        subset=getattr(args, "subset", "all"), max_seconds=getattr(args, "max_seconds", None),
        report_only=getattr(args, "report_only", False),
        workers=args.workers, scheduler=getattr(args, "scheduler", None),
    )
    print_summary(summary, args.out)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m evals.agent_bench``."""
    parser = argparse.ArgumentParser(prog="python -m evals.agent_bench", description=__doc__
                                     .split("\n\n")[0])
    parser.add_argument("--backends", nargs="+", default=["oracle"])
    parser.add_argument("--base-url")
    parser.add_argument("--limit", type=int)
    parser.add_argument("--out", default="evals/results/agent")
    parser.add_argument("--workers", type=int, default=1)
    add_arguments(parser)
    return command(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
