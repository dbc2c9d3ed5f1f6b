"""A quick check of a real model on the agent: right tools, right arguments, right results.

Five requests on the bundled nuclei image (``examples/nuclei.tif``, 0.5 µm pixels, 120 nuclei in
``examples/nuclei_labels.tif``): one tool, two and three tools in one turn, measuring a label file
whose answer is known exactly, and a plain question that needs no tool. Each case is scored on
tool choice, arguments and, where the ground truth allows, the measured result.

The end-to-end test runs it with the embedded model; as a script it prints a table and writes
JSON::

    python -m agent.trial --model 0.5b [--json trial.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agent.loop import Agent, Reply
from agent.session import Session
from tools.workspace import Workspace

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
DEMO_REQUEST = (
    "Denoise {image}, then segment the nuclei with Voronoi-Otsu labeling (spot sigma 3, "
    "outline sigma 1), then measure their area."
)
TRUE_COUNT = 120


@dataclass
class Case:
    """One request, the tools it needs, and what their arguments and results must be."""

    name: str
    request: str
    tools: list[str]
    arguments: dict[str, dict[str, Any]] = field(default_factory=dict)
    check: Callable[[Agent, Reply], str | None] | None = None


def _table(agent: Agent, reply: Reply) -> Any:
    tables = [n for n in reply.outputs if agent.session.workspace.artifacts[n].kind == "table"]
    return agent.session.workspace.artifacts[tables[-1]].data if tables else None


def _check_truth_table(agent: Agent, reply: Reply) -> str | None:
    from tools.io import read_image

    table = _table(agent, reply)
    truth, _ = read_image(EXAMPLES / "nuclei_labels.tif")
    if table is None:
        return "no table"
    areas = np.bincount(truth.ravel())[1:]
    areas = areas[areas > 0] * 0.25
    if len(table) != TRUE_COUNT or not np.allclose(np.sort(table["area_um2"]), np.sort(areas)):
        return f"table of {len(table)} rows does not match the truth's {TRUE_COUNT} areas"
    return None


def _check_segmentation(min_f1: float) -> Callable[[Agent, Reply], str | None]:
    def check(agent: Agent, reply: Reply) -> str | None:
        from stardist.matching import matching

        from tools.io import read_image

        labels = [n for n in reply.outputs if agent.session.workspace.artifacts[n].kind == "labels"]
        table = _table(agent, reply)
        if not labels or table is None:
            return "no labels or no table"
        found = agent.session.workspace.artifacts[labels[-1]].data
        truth, _ = read_image(EXAMPLES / "nuclei_labels.tif")
        f1 = matching(truth.astype(np.int32), found.astype(np.int32), thresh=0.5).f1
        if len(table) != np.unique(found[found > 0]).size:
            return "table rows differ from label count"
        if f1 < min_f1:
            return f"F1 at IoU 0.5 is {f1:.2f} < {min_f1}"
        return None

    return check


CASES = [
    Case("one tool", "Denoise nuclei.tif", ["category:denoise"],
         {"category:denoise": {"image": "nuclei.tif"}}),
    Case("measure known labels", "Measure the area of the objects in nuclei_labels.tif",
         ["measure_objects"], {"measure_objects": {"labels": "nuclei_labels.tif"}},
         _check_truth_table),
    Case("two tools", "Segment the nuclei in nuclei.tif and measure their area.",
         ["category:segment", "measure_objects"],
         {"category:segment": {"image": "nuclei.tif"}}, _check_segmentation(0.45)),
    Case("three tools with parameters", DEMO_REQUEST.format(image="nuclei.tif"),
         ["category:denoise", "voronoi_otsu_labeling", "measure_objects"],
         {"category:denoise": {"image": "nuclei.tif"},
          "voronoi_otsu_labeling": {"spot_sigma": 3.0, "outline_sigma": 1.0}},
         _check_segmentation(0.8)),
    Case("question, no tool", "What does Otsu thresholding do?", []),
]


def _matches(agent: Agent, used: str | None, expected: str) -> bool:
    """``expected`` is a tool name, or ``category:X`` for any tool of that category."""
    if expected.startswith("category:"):
        return used in agent.registry and agent.registry.get(used).category == expected[9:]
    return used == expected


def score(case: Case, agent: Agent, reply: Reply) -> dict[str, Any]:
    """Whether the reply used the right tools with the right arguments and results."""
    used = [e.tool for e in reply.tool_calls]
    problems = []
    if len(used) != len(case.tools) or not all(
        _matches(agent, u, e) for u, e in zip(used, case.tools, strict=False)
    ):
        problems.append(f"tools {used} != {case.tools}")
    for tool_name, expected in case.arguments.items():
        event = next((e for e in reply.tool_calls if _matches(agent, e.tool, tool_name)), None)
        if event is None:
            continue
        for key, value in expected.items():
            got = event.arguments.get(key)
            artifact = agent.session.workspace.artifacts.get(str(got))
            given_as = artifact.provenance.get("file", "") if artifact is not None else ""
            if got != value and not (isinstance(value, str) and given_as.endswith(value)):
                problems.append(f"{tool_name}.{key}={got!r}, expected {value!r}")
    if not problems and case.check is not None:
        problem = case.check(agent, reply)
        if problem:
            problems.append(problem)
    return {
        "case": case.name,
        "request": case.request,
        "tools": used,
        "errors": [e.message for e in reply.events if e.kind == "error"],
        "ok": not problems,
        "problems": problems,
        "model_calls": reply.model_calls,
        "seconds": round(reply.seconds, 2),
        "answer": reply.text[:300],
    }


def run_trial(model: Any, info: Any, *, outdir: Path, cases: list[Case] = CASES,
              progress: bool = False) -> list[dict[str, Any]]:
    """Ask each case in a fresh session and score it."""
    results = []
    for case in cases:
        workspace = Workspace([EXAMPLES], output_root=outdir)
        agent = Agent(model, session=Session(workspace, model_info=info), model_info=info)
        reply = agent.ask(case.request)
        results.append(score(case, agent, reply))
        if progress:
            r = results[-1]
            print(f"{'ok  ' if r['ok'] else 'FAIL'} {case.name}: {r['tools']} "
                  f"{r['seconds']:.1f} s {'; '.join(r['problems'])}", file=sys.stderr)
    return results


def main(argv: list[str] | None = None) -> int:
    """``python -m agent.trial``: run the cases with one model and print the scores."""
    from agent.backends import make_chat_model

    parser = argparse.ArgumentParser(prog="python -m agent.trial")
    parser.add_argument("--model", default="0.5b")
    parser.add_argument("--base-url", default=None)
    parser.add_argument("--outdir", default="bia_output/trial")
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    model, info = make_chat_model(args.model, base_url=args.base_url)
    load = time.perf_counter() - start
    results = run_trial(model, info, outdir=Path(args.outdir), progress=True)
    n_ok = sum(r["ok"] for r in results)
    total = sum(r["seconds"] for r in results)
    calls = sum(r["model_calls"] for r in results)
    print(f"\n{info.name}: {n_ok}/{len(results)} cases right; load {load:.1f} s; "
          f"{total / len(results):.1f} s per request, {total / max(calls, 1):.1f} s per "
          "model call")
    for r in results:
        print(f"  {'ok  ' if r['ok'] else 'FAIL'} {r['case']:<28} {r['seconds']:>6.1f} s  "
              f"{', '.join(r['tools']) or '(no tool)'}")
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"model": info.as_dict(), "load_seconds": load, "results": results}, indent=2,
            default=str))
    return 0 if n_ok == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())

