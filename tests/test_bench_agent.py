"""Agent benchmark: the dataset, its gold plans on real tools, and the scorer's classes."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

import pytest

from evals import agent_bench
from evals.agent_bench import AgentAnswer, ToolCall
from evals.agent_tasks import (
    Outcome,
    Step,
    build_requests,
    file_variable,
    gap_threshold,
    select,
    write_images,
)
from tools.registry import Registry, tool
from tools.types import Image
from tools.workspace import Workspace

FILE = re.compile(r"[\w./]+\.(?:tif|txt)")


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("images")
    return folder, write_images(folder)


@pytest.fixture(scope="module")
def requests(images: tuple[Path, dict]) -> list:
    return build_requests(images[1])


def test_dataset_size_kinds_and_v1_subset(images: tuple[Path, dict], requests: list) -> None:
    folder, _ = images
    assert len(requests) >= 150
    assert len({r.id for r in requests}) == len(requests)
    assert len({r.request for r in requests}) == len(requests)
    v1 = select(requests, "v1")
    assert [r.id for r in v1] == [f"A{i:03d}" for i in range(63)]
    # v1's requests are the first version's, word for word (old and new figures compare).
    assert v1[0].request == "How many blobs are there in blobs_3.tif?"
    assert v1[62].request == ("Segment every frame of movie.tif, link the cells over time and "
                              "count the tracks.")
    kinds = defaultdict(list)
    for r in requests:
        kinds[r.kind].append(r)
    assert len(kinds["question"]) >= 9 and len(kinds["bad"]) >= 12
    assert {r.task for r in kinds["bad"]} >= {"bad_missing_file", "bad_outside_workspace",
                                              "bad_unsupported_file", "bad_no_calibration"}
    for r in kinds["analysis"]:
        assert r.steps or r.conversation, r.id
        assert all(o.value > 0 for o in r.outcomes), r.id
        assert (r.file in r.request or r.turn > 0) and (folder / r.file).exists(), r.id
        assert r.gold.splitlines()[-1].startswith("answer("), r.id
    for r in kinds["question"]:
        assert not r.steps and not FILE.search(r.request) and r.gold.startswith("reply(")
    for r in kinds["bad"]:
        assert r.problem and r.file in r.request
    assert not (folder / "ghost.tif").exists() and (folder / "notes.txt").exists()
    assert (folder / "../outside.tif").resolve().exists()


def test_every_task_has_three_wordings(requests: list) -> None:
    templates = defaultdict(set)
    for r in requests:
        if r.subset == "v3":
            continue  # held out: one new wording per task, by design
        text = r.request
        for name in FILE.findall(text):
            text = text.replace(name, "{f}")
        text = re.sub(r"\b\d+ px\b|\b\d+ pixels\b", "{t}", text)
        templates[r.task].add(text)
    few = {task: len(t) for task, t in templates.items() if len(t) < 3}
    # Follow-up turns' tasks are counted by their conversations (three each).
    assert not {t: n for t, n in few.items() if not t.startswith("followup")}, few
    conversations = defaultdict(list)
    for r in requests:
        if r.conversation:
            conversations[r.conversation].append(r.turn)
    assert len(conversations) >= 6
    assert all(sorted(turns) == list(range(len(turns))) for turns in conversations.values())
    terse = [r for r in requests if len(r.request.split()) <= 5 and r.kind == "analysis"]
    assert len(terse) >= 10


def test_truth_comes_from_generators_and_masks(images: tuple[Path, dict]) -> None:
    _, truths = images
    assert truths["blobs_15.tif"].count == 15
    assert truths["coins.tif"].count == 24  # by eye: no mask ships with skimage.data.coins
    assert truths["nuclei_real.tif"].count == 125  # labels of stardist's shipped mask
    assert truths["border_blobs_12.tif"].count_inner < 12
    assert truths["cells_calibrated.tif"].mean_area_phys == pytest.approx(
        truths["cells_calibrated.tif"].mean_area_px * 0.65**2)
    assert truths["stack.tif"].mean_area_phys == pytest.approx(
        truths["stack.tif"].mean_area_px * 1.0 * 0.5 * 0.5)
    assert truths["movie_plain.tif"].n_tracks == truths["movie.tif"].n_tracks == 14
    threshold, above = gap_threshold([50, 52, 55, 80, 82, 90, 91, 95])
    assert 55 < threshold < 80 and above == 5


def test_stated_files_carry_no_metadata(images: tuple[Path, dict]) -> None:
    """The statement in the request is the only source: read plainly, they are wrong."""
    from tools import io

    folder, _ = images
    data, meta = io.read_image(folder / "movie_plain.tif")
    assert data.ndim == 3 and "T" not in meta.axes
    _, meta = io.read_image(folder / "blobs_plain.tif")
    assert meta.unit == "pixel"
    _, meta = io.read_image(folder / "stack_plain.tif")
    assert meta.unit == "pixel"
    _, meta = io.read_image(folder / "stack.tif")
    assert meta.axes == "ZYX" and meta.unit == "µm"


def test_gold_plans_are_valid_plans(requests: list) -> None:
    import agent.plan as plan
    registry = agent_bench.load_registry()
    for r in requests:
        if r.kind == "question":
            assert plan.parse_plan(r.gold, registry, {}).is_reply
            continue
        gold = r.gold.replace("{table}", "earlier_table")
        variables = {file_variable(f): "image" for f in FILE.findall(r.request)}
        variables["earlier_table"] = "table"
        checked = agent_bench.applicable(r, registry) and r.kind == "analysis"
        parsed = plan.parse_plan(gold, registry, variables, check=checked)
        assert len(parsed.answer) == len(r.outcomes), r.id


@pytest.mark.slow
def test_gold_plans_reach_the_truth_on_real_tools(images: tuple[Path, dict],
                                                  requests: list) -> None:
    """The dataset is consistent: each applicable gold plan, run on the real files, reaches
    its ground truth (requests needing tools still to come are skipped, and counted)."""
    import agent.plan as plan
    folder, _ = images
    registry = agent_bench.load_registry()
    sessions: dict[str, Workspace] = {}
    checked = 0
    for r in requests:
        if r.kind != "analysis" or not agent_bench.applicable(r, registry):
            continue
        workspace = sessions.get(r.conversation) or Workspace([folder])
        if r.conversation:
            sessions[r.conversation] = workspace
        variables = {b.name: b for b in map(plan.bind_artifact, workspace)}
        for name in FILE.findall(r.request):
            binding = plan.bind_file(workspace, name)
            variables[binding.name] = binding
        gold = agent_bench._fill_gold(r.gold, workspace)
        result = plan.run_plan(plan.parse_plan(gold, registry, variables), workspace, registry)
        values = [a.number for a in result.answers]
        assert all(o.accepts(v) for o, v in zip(r.outcomes, values, strict=True)), (r.id, values)
        checked += 1
    assert checked >= 110


def _registry_with_segmenter() -> Registry:
    registry = Registry()

    @tool(category="segment", registry=registry)
    def my_new_segmenter(image: Image) -> Image:
        """Segment.

        Parameters
        ----------
        image : Image
            Input.
        """
        return image

    return registry


def test_matching_tolerates_extra_calls_and_other_tools_of_a_category() -> None:
    registry = _registry_with_segmenter()
    steps = (Step(("voronoi_otsu_labeling",), categories=("segment",), args={"input": "a"}),
             Step(("measure_objects",), args={"input": "a"}))
    calls = [ToolCall("denoise_nlm", {"image": "a.tif"}),
             ToolCall("my_new_segmenter", {"image": "a_denoise_nlm"}),
             ToolCall("measure_objects", {"labels": "a_labels"})]
    assert agent_bench.match_steps(steps, calls, registry) == [1, 2]
    assert agent_bench.match_steps(steps, [calls[2], calls[1]], registry) == [1, None]
    numeric = Step(("voronoi_otsu_labeling",), args={"input": "a", "spot_sigma": 3.0})
    assert agent_bench.check_arguments(numeric, ToolCall("v", {"spot_sigma": 3})) == (1, 1)
    assert agent_bench.check_arguments(numeric, ToolCall("v", {"spot_sigma": 2})) == (0, 1)
    assert agent_bench.check_arguments(numeric, None) == (0, 1)


def test_wiring_follows_outputs_not_names() -> None:
    """The denoised image must be the one segmented; a call on another file is miswired."""
    steps = (Step(("denoise_nlm",), args={"input": "noisy"}, oracle={"image": "$file"}),
             Step(("voronoi_otsu_labeling",), args={"input": "noisy"},
                  oracle={"image": "$prev"}))
    denoise = ToolCall("denoise_nlm", {"image": "noisy.tif"}, outputs=["smooth_1"])
    right = [denoise, ToolCall("voronoi_otsu_labeling", {"image": "smooth_1"}, outputs=["x"])]
    raw = [denoise, ToolCall("voronoi_otsu_labeling", {"image": "noisy"}, outputs=["x"])]
    other = [ToolCall("denoise_nlm", {"image": "clean.tif"}, outputs=["s"]),
             ToolCall("voronoi_otsu_labeling", {"image": "s"}, outputs=["x"])]
    for calls, expected in ((right, True), (raw, False), (other, False)):
        sources = agent_bench.derivations(calls)
        assert agent_bench.check_wiring(steps, [0, 1], 0, sources) is expected
    # A follow-up's input made in an earlier turn still derives from the file.
    history = [ToolCall("voronoi_otsu_labeling", {"image": "cells.tif"}, outputs=["cells_l"])]
    later = [ToolCall("measure_objects", {"labels": "cells_l"}, outputs=["t"])]
    sources = agent_bench.derivations(history + later)
    assert agent_bench.derives_from_file(sources[1], "cells")
    assert not agent_bench.derives_from_file(sources[1], "cells_other")


def test_numbers_in_text() -> None:
    assert agent_bench.numbers_in("64 blobs (spot sigma 3.1), 1,234.5 µm²") == [64, 3.1, 1234.5]
    assert agent_bench.numbers_in("area_um2 and blobs_3.tif") == []
    assert agent_bench.states(Outcome("count", 64, abs_tol=1), "I found 65 blobs.")
    assert not agent_bench.states(Outcome("count", 64, abs_tol=1), "I segmented the blobs.")


def test_outcome_tolerance() -> None:
    assert Outcome("count", 10, abs_tol=1).accepts(11)
    assert not Outcome("count", 10, abs_tol=1).accepts(12)
    assert Outcome("mean_area", 100, rel_tol=0.05).accepts(95)
    assert not Outcome("mean_area", 100, rel_tol=0.05).accepts(94)
    assert not Outcome("count", 10, abs_tol=1).accepts(None)


def _run(tmp_path: Path, answerers: dict, **kw) -> dict:
    summary = agent_bench.run_agent_bench(tmp_path, list(answerers), answerers=answerers, **kw)
    records = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    return {"summary": summary, "records": {(r["backend"], r["request_id"]): r for r in records}}


def test_failure_classes_of_scripted_answerers(tmp_path: Path) -> None:
    """Each way of failing gets its class; the right analysis without its number fails too."""
    registry = agent_bench.load_registry()

    def segment(workspace: Workspace, image: str) -> ToolCall:
        result = registry.run(workspace, "voronoi_otsu_labeling", {"image": image})
        return ToolCall(result.tool, result.arguments, outputs=result.outputs)

    answers = {
        "right": lambda r, ws: AgentAnswer("3 blobs.", [segment(ws, "blobs_3.tif")], [3.0]),
        "silent": lambda r, ws: AgentAnswer("Done.", [segment(ws, "blobs_3.tif")], [3.0]),
        "other_file": lambda r, ws: AgentAnswer("40 blobs.", [segment(ws, "blobs_40.tif")],
                                                [40.0]),
        "no_tool": lambda r, ws: AgentAnswer("There are 3 objects.", [], []),
        "wrong_value": lambda r, ws: AgentAnswer("7 blobs.", [segment(ws, "blobs_3.tif")],
                                                 [7.0]),
        "crash": lambda r, ws: 1 / 0,
        # One value asked, two given: the asked one counts wherever it stands.
        "count_and_area": lambda r, ws: AgentAnswer("70 px², 3 blobs.",
                                                    [segment(ws, "blobs_3.tif")], [70.0, 3.0]),
    }
    run = _run(tmp_path, answers, subset="v1", limit=1)
    failure = {b: run["records"][(b, "A000")]["failure"] for b in answers}
    assert failure == {"right": None, "silent": "no_number", "other_file": "wrong_wiring",
                       "no_tool": "wrong_tool", "wrong_value": "wrong_value",
                       "crash": "runtime_error", "count_and_area": None}
    rows = {b["backend"]: b for b in run["summary"]["backends"]}
    assert rows["right"]["success"] == 1.0 and rows["silent"]["success"] == 0.0


def test_questions_and_bad_requests_are_scored_on_the_message(tmp_path: Path,
                                                              requests: list) -> None:
    question = next(r for r in requests if r.kind == "question")
    missing = next(r for r in requests if r.task == "bad_missing_file")

    def helpful(request: str, workspace: Workspace) -> AgentAnswer:
        if request == question.request:
            return AgentAnswer("It splits touching objects at the watershed of the seeds.", [])
        return AgentAnswer("I cannot find ghost.tif in the workspace.", [], [])

    def careless(request: str, workspace: Workspace) -> AgentAnswer:
        if request == question.request:
            return AgentAnswer("Here.", [ToolCall("voronoi_otsu_labeling", {"image": "x"})])
        return AgentAnswer('Traceback (most recent call last):\n  File "x.py", line 3', [])

    def guesser(request: str, workspace: Workspace) -> AgentAnswer:
        return AgentAnswer("ghost.tif has 12 nuclei.", [], [12.0])

    answers = {"helpful": helpful, "careless": careless, "guesser": guesser}
    for subset in ("question", "bad"):
        run = _run(tmp_path / subset, answers, subset=subset, limit=1)
        rid = question.id if subset == "question" else missing.id
        got = {b: run["records"][(b, rid)]["failure"] for b in answers}
        if subset == "question":
            assert got["helpful"] is None and got["careless"] == "tool_on_question"
        else:
            assert got == {"helpful": None, "careless": "traceback",
                           "guesser": "answered_anyway"}


def test_runs_resume_and_stop_at_the_time_budget(tmp_path: Path) -> None:
    seen: list[str] = []

    def counting(request: str, workspace: Workspace) -> AgentAnswer:
        seen.append(request)
        return AgentAnswer("no idea", [], [])

    summary = agent_bench.run_agent_bench(tmp_path, ["c"], subset="v1", limit=3,
                                          max_seconds=0, answerers={"c": counting})
    assert len(seen) == 1 and summary["finished"] is False
    agent_bench.run_agent_bench(tmp_path, ["c"], subset="v1", limit=3,
                                answerers={"c": counting})
    assert len(seen) == 3  # the first was not asked again
    lines = (tmp_path / "results.jsonl").read_text().splitlines()
    assert len(lines) == 3
    again = agent_bench.run_agent_bench(tmp_path, ["c"], subset="v1", limit=3,
                                        report_only=True, answerers={"c": counting})
    assert len(seen) == 3 and again["backends"][0]["requests"] == 3
    assert (tmp_path / "report.md").exists() and (tmp_path / "success.png").exists()
    assert json.loads((tmp_path / "summary_v1.json").read_text())["backends"][0]["requests"] == 3


def test_conversation_turns_share_one_workspace(tmp_path: Path, requests: list) -> None:
    workspaces: dict[str, Workspace] = {}

    def remember(request: str, workspace: Workspace) -> AgentAnswer:
        workspaces[request] = workspace
        return AgentAnswer("?", [], [])

    conversation = [r for r in requests if r.conversation == "same_0"]
    unit = agent_bench.units(conversation)
    assert len(unit) == 1 and [r.turn for r in unit[0]] == [0, 1]
    agent_bench.run_unit_with(remember, unit[0], tmp_path, agent_bench.load_registry())
    first, second = (workspaces[r.request] for r in unit[0])
    assert first is second


@pytest.mark.slow
def test_the_oracle_scores_one_through_the_planner(tmp_path: Path) -> None:
    """Gold plans, replayed by the scripted model through agent.planner, succeed on every
    applicable request: analyses, questions, bad requests and follow-ups."""
    summary = agent_bench.run_agent_bench(tmp_path, ["oracle"])
    oracle = summary["backends"][0]
    assert summary["applicable"] >= 135
    assert oracle["requests"] == summary["applicable"]
    assert oracle["success"] == 1.0, oracle["failures"]


def test_a_process_that_died_is_recorded_and_skipped(tmp_path: Path) -> None:
    """A native crash kills the process mid-request; the next run records those requests as
    failed instead of crashing on them again."""
    (tmp_path / "inflight.json").write_text(json.dumps({"backend": "c",
                                                        "request_ids": ["A001"]}))
    asked: list[str] = []

    def counting(request: str, workspace: Workspace) -> AgentAnswer:
        asked.append(request)
        return AgentAnswer("no idea", [], [])

    agent_bench.run_agent_bench(tmp_path, ["c"], subset="v1", limit=3,
                                answerers={"c": counting})
    records = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    crashed = [r for r in records if r.get("crashed")]
    assert [r["request_id"] for r in crashed] == ["A001"]
    assert crashed[0]["failure"] == "runtime_error" and "died" in crashed[0]["error"]
    assert len(asked) == 2 and len(records) == 3
    assert not (tmp_path / "inflight.json").exists()
