"""The planner with a scripted model: real tools on real arrays; only the plans are written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from skimage.draw import disk

from agent.backends import ModelInfo, ScriptedChatModel
from agent.grammar import plan_grammar
from agent.plan import PlanSyntaxError, PlanTypeError, parse_plan, run_plan
from agent.planner import Agent, is_question, named_files, stated_parameters
from agent.retrieval import KeywordRetriever
from agent.session import Session
from agent.toolset import load_registry
from tests.scripted import plan
from tools.io import write_image
from tools.registry import Registry
from tools.types import ImageMeta
from tools.workspace import Workspace

PIXEL_UM = 0.5
DISCS = [((20, 24), 7), ((22, 80), 9), ((64, 40), 6), ((70, 100), 8), ((105, 20), 7),
         ((108, 75), 10)]
TOOLS = ("denoise_nlm", "voronoi_otsu_labeling", "threshold_labeling", "measure_objects",
         "remove_small_objects")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A noisy fluorescence-like image of six discs with a known pixel size."""
    folder = tmp_path / "data"
    rng = np.random.default_rng(7)
    image = np.full((128, 128), 20.0)
    for center, radius in DISCS:
        image[disk(center, radius, shape=image.shape)] = 200.0
    image += rng.normal(0, 8, image.shape)
    meta = ImageMeta(axes="YX", spacing={"Y": PIXEL_UM, "X": PIXEL_UM}, unit="µm")
    write_image(folder / "cells.tif", np.clip(image, 0, 255).astype(np.uint16), meta)
    write_image(folder / "more.tif", np.clip(image[:, ::-1], 0, 255).astype(np.uint16), meta)
    return folder


@pytest.fixture
def registry() -> Registry:
    """A few real tools, so that tests do not depend on which other tools exist."""
    everything = load_registry()
    own = Registry()
    for name in TOOLS:
        own.register(everything.get(name))
    return own


def make_agent(data_dir: Path, replies: list, registry: Registry, **kwargs) -> Agent:
    workspace = Workspace([data_dir], output_root=data_dir.parent / "out")
    model = ScriptedChatModel(replies=replies)
    kwargs.setdefault("retriever", KeywordRetriever(registry))
    kwargs.setdefault("examples", lambda request, k=3: [])
    return Agent(model, session=Session(workspace), registry=registry,
                 model_info=ModelInfo("scripted", "scripted"), **kwargs)


COUNT_AND_AREA = plan(
    "labels1 = threshold_labeling(image=cells)",
    "table2 = measure_objects(labels=labels1, image=cells)",
    'answer(count(labels1), mean(table2, "area"))',
)


def test_one_plan_runs_and_the_reply_states_the_number_unit_and_method(
        data_dir: Path, registry: Registry) -> None:
    agent = make_agent(data_dir, [COUNT_AND_AREA], registry)
    reply = agent.ask("How many cells are in cells.tif, and their mean area?")
    assert reply.stopped is None and reply.model_calls == 1
    true_area = np.mean([np.pi * r * r for _, r in DISCS]) * PIXEL_UM**2
    assert reply.values[0] == 6
    assert reply.values[1] == pytest.approx(true_area, rel=0.1)
    assert reply.text.startswith("6 cells (threshold_labeling")
    assert "µm²" in reply.text and "Mean area" in reply.text
    assert [e.tool for e in reply.tool_calls] == ["threshold_labeling", "measure_objects"]
    assert reply.plan is not None and reply.plan.render() == COUNT_AND_AREA
    # the model saw the request's file bound to a variable, and was constrained by a grammar
    seen = agent.model.seen[0]
    assert "cells (image 128x128 uint16, axes YX, pixel size 0.5x0.5 µm" in seen["user"]
    assert 'l1-call-threshold-labeling ::= "threshold_labeling("' in seen["grammar"]
    assert set(reply.stats) >= {"prompt_tokens", "generated_tokens", "prompt_tps",
                                "generate_tps", "replans"}
    assert reply.stats["replans"] == 0


@pytest.mark.parametrize(("bad", "error"), [
    ("labels1 = threshold_labeling(image=cells\nanswer(count(labels1))", "not valid plan syntax"),
    ("import os\nanswer(count(x))", "only tool calls"),
    ("labels1 = segment_everything(image=cells)\nanswer(count(labels1))", "Unknown tool"),
    ("labels1 = threshold_labeling(image=cells, spot_size=3)\nanswer(count(labels1))",
     "unknown parameter 'spot_size'"),
    ("table1 = measure_objects(labels=cells)\nanswer(count(table1))",
     "needs labels, but cells is an image"),
    ("labels1 = threshold_labeling(image=cells)", "the plan has no answer"),
    ('labels1 = threshold_labeling(image="../../etc/passwd")\nanswer(count(labels1))',
     "takes a variable"),
    ('answer(mean(cells, "area"))', "needs a table"),
])
def test_a_bad_plan_gets_one_replan_with_the_exact_error(
        data_dir: Path, registry: Registry, bad: str, error: str) -> None:
    agent = make_agent(data_dir, [bad, COUNT_AND_AREA], registry)
    reply = agent.ask("count the cells in cells.tif and their mean area")
    assert reply.stopped is None, reply.text
    assert reply.model_calls == 2 and reply.stats["replans"] == 1
    assert reply.values[0] == 6
    replan = agent.model.seen[1]["user"]
    assert "This plan failed:" in replan and error in replan


def test_an_unused_result_is_refused_by_the_check_and_dropped_by_the_planner(
        data_dir: Path, registry: Registry) -> None:
    dead = plan("labels1 = threshold_labeling(image=cells)",
                "labels2 = voronoi_otsu_labeling(image=cells)", "answer(count(labels1))")
    with pytest.raises(PlanTypeError, match="labels2 is made but never used"):
        parse_plan(dead, registry, {"cells": "image"})
    agent = make_agent(data_dir, [dead], registry)
    reply = agent.ask("count the cells in cells.tif")
    assert reply.values == [6] and reply.model_calls == 1
    assert [e.tool for e in reply.tool_calls] == ["threshold_labeling"]  # the dead call: gone


def test_a_step_the_request_names_must_be_in_the_plan(data_dir: Path,
                                                      registry: Registry) -> None:
    skipped = plan("labels1 = threshold_labeling(image=cells)", "answer(count(labels1))")
    full = plan("image1 = denoise_nlm(image=cells)", "labels2 = threshold_labeling(image=image1)",
                "answer(count(labels2))")
    agent = make_agent(data_dir, [skipped, full], registry)
    reply = agent.ask("Denoise cells.tif, then segment it and count the cells")
    assert reply.model_calls == 2 and reply.values == [6]
    assert "the request asks to denoise" in agent.model.seen[1]["user"]
    assert [e.tool for e in reply.tool_calls] == ["denoise_nlm", "threshold_labeling"]


def test_a_label_image_is_measured_not_segmented_again(tmp_path: Path,
                                                       registry: Registry) -> None:
    with pytest.raises(PlanTypeError, match="already a label image; measure it directly"):
        parse_plan("labels1 = threshold_labeling(image=masks)\nanswer(count(labels1))",
                   registry, {"masks": "labels"})
    text = plan_grammar(registry, ["threshold_labeling"], variables={"masks": "labels",
                                                                     "cells": "image"})
    assert 'l1-ref-intensity ::= "cells"' in text


def test_two_bad_plans_end_in_a_clear_message_without_running_anything(
        data_dir: Path, registry: Registry) -> None:
    wrong = "table1 = measure_objects(labels=cells)\nanswer(count(table1))"
    agent = make_agent(data_dir, [wrong, wrong], registry)
    reply = agent.ask("measure the cells in cells.tif")
    assert reply.stopped == "errors" and reply.model_calls == 2
    assert "Nothing ran" in reply.text and "needs labels, but cells is an image" in reply.text
    assert not agent.session.calls


def test_a_run_time_failure_replans_once_and_keeps_what_was_made(
        data_dir: Path, registry: Registry) -> None:
    # a threshold above every pixel: the segmenter finds nothing, which is a failure
    empty = plan("labels1 = threshold_labeling(image=cells, method=\"manual\", threshold=10000)",
                 "answer(count(labels1))")
    still_empty = plan("image1 = denoise_nlm(image=cells)",
                       "labels2 = threshold_labeling(image=image1, method=\"manual\", "
                       "threshold=10000)",
                       "answer(count(labels2))")
    agent = make_agent(data_dir, [empty, still_empty], registry)
    reply = agent.ask("count the cells in cells.tif with a manual threshold of 10000")
    assert reply.stopped == "errors" and reply.model_calls == 2
    assert "threshold_labeling found no objects" in agent.model.seen[1]["user"]
    assert "denoise_nlm -> cells_denoise_nlm" in reply.text
    assert "found no objects" in reply.text
    assert "cells_denoise_nlm" in agent.session.workspace  # made before the failure: kept


def test_a_plain_question_is_answered_from_passages_with_citations_and_no_tool(
        data_dir: Path, registry: Registry) -> None:
    agent = make_agent(data_dir, ['reply("Non-local means averages similar patches [1].")'],
                       registry)
    reply = agent.ask("What does non-local means denoising do?")
    assert reply.stopped is None and not reply.tool_calls and not agent.session.calls
    assert reply.text == "Non-local means averages similar patches [1]."
    assert reply.sources and "denoise_nlm" in reply.sources[0].title
    assert "Documentation:\n[1]" in agent.model.seen[0]["user"]
    assert "reply ::=" in agent.model.seen[0]["grammar"]


def test_a_follow_up_plans_against_the_sessions_artifacts(
        data_dir: Path, registry: Registry) -> None:
    follow = 'answer(count(cells_labels_measurements, where="area > 40"))'
    agent = make_agent(data_dir, [COUNT_AND_AREA, follow], registry)
    first = agent.ask("segment the cells in cells.tif and measure them")
    assert first.values[0] == 6
    reply = agent.ask("now only those larger than 40 µm²")
    table = agent.session.workspace.artifacts["cells_labels_measurements"].data
    assert reply.values == [int((table["area_um2"] > 40).sum())]
    assert 0 < reply.values[0] < 6
    prompt = agent.model.seen[1]["user"]
    assert "cells_labels_measurements (table, 6 rows" in prompt
    assert "Earlier request: segment the cells in cells.tif" in prompt
    assert not any(e.kind == "call" for e in reply.events)


def test_do_the_same_for_another_file_and_one_tool_twice_in_a_plan(
        data_dir: Path, registry: Registry) -> None:
    both = plan("labels1 = threshold_labeling(image=cells)",
                "labels2 = threshold_labeling(image=more)",
                "answer(count(labels1), count(labels2))")
    agent = make_agent(data_dir, [both], registry)
    reply = agent.ask("count the objects in cells.tif and in more.tif")
    assert reply.values == [6, 6]
    assert [e.tool for e in reply.tool_calls] == ["threshold_labeling"] * 2


def test_files_the_request_names_are_checked_before_the_model_is_asked(
        data_dir: Path, registry: Registry) -> None:
    agent = make_agent(data_dir, [], registry)
    missing = agent.ask("count the cells in absent.tif")
    assert missing.stopped == "errors" and missing.model_calls == 0
    assert "'absent.tif'" in missing.text and "no artifact or file" in missing.text.lower()
    outside = agent.ask("count the cells in ../../secret.tif")
    assert outside.stopped == "errors" and "outside the workspace" in outside.text


def test_plans_read_with_ast_never_execute(data_dir: Path, registry: Registry) -> None:
    marker = data_dir / "pwned"
    hostile = f'labels1 = threshold_labeling(image=__import__("os").system("touch {marker}"))'
    with pytest.raises(PlanSyntaxError, match="arguments must be literals"):
        parse_plan(hostile + "\nanswer(count(labels1))", registry, {"cells": "image"})
    assert not marker.exists()


def test_a_label_file_must_look_like_labels_to_be_measured(tmp_path: Path,
                                                           registry: Registry) -> None:
    """An integer intensity image is not a label image, whatever the dtype says."""
    ws = Workspace([tmp_path], output_root=tmp_path / "out")
    import tifffile

    tifffile.imwrite(tmp_path / "blobs.tif",
                     (np.arange(64 * 64) % 251).reshape(64, 64).astype(np.uint8))
    from agent.plan import bind_file

    binding = bind_file(ws, "blobs.tif")
    assert binding.kind == "image"
    with pytest.raises(PlanTypeError, match="needs labels, but blobs is an image"):
        parse_plan("table1 = measure_objects(labels=blobs)\nanswer(count(table1))", registry,
                   {"blobs": binding})


def test_canonical_form_ignores_names_order_and_defaults(registry: Registry) -> None:
    a = parse_plan("x = threshold_labeling(image=cells)\nanswer(count(x))", registry,
                   {"cells": "image"})
    b = parse_plan('labels1 = threshold_labeling(method="otsu", image=cells)\n'
                   "answer(count(labels1))", registry, {"cells": "image"})
    assert a.canonical(registry) == b.canonical(registry)


def test_self_consistency_runs_the_plan_most_samples_agree_on(
        data_dir: Path, registry: Registry) -> None:
    odd = plan("labels1 = voronoi_otsu_labeling(image=cells)", "answer(count(labels1))")
    usual = plan("labels1 = threshold_labeling(image=cells)", "answer(count(labels1))")
    agent = make_agent(data_dir, [odd, usual, usual], registry, samples=3)
    reply = agent.ask("count the cells in cells.tif")
    assert reply.model_calls == 3
    assert [e.tool for e in reply.tool_calls] == ["threshold_labeling"]


def test_the_grammar_offers_only_variables_of_the_right_kind(registry: Registry) -> None:
    text = plan_grammar(registry, ["measure_objects", "threshold_labeling"],
                        variables={"cells": "image"}, max_calls=2)
    line1 = next(r for r in text.splitlines() if r.startswith("line-1 ::="))
    assert "measure_objects" not in line1  # no labels exist before line 1
    assert 'l2-ref-labels ::= "labels1"' in text
    assert "l2-ref-image ::= \"cells\" | \"labels1\"" in text


def test_only_parameters_the_request_names_may_be_set(registry: Registry) -> None:
    voronoi = registry.get("voronoi_otsu_labeling")
    assert stated_parameters(voronoi, "count the nuclei") == []
    assert "spot_sigma" in stated_parameters(voronoi, "segment with spot sigma 3")
    small = registry.get("remove_small_objects")
    assert "min_size" in stated_parameters(small, "drop objects smaller than 40 pixels")


def test_a_request_about_nuclei_may_say_what_the_objects_are() -> None:
    from agent.toolset import load_registry

    segmenter = load_registry().get("segment_objects")
    for request in ("how many nuclei are in a.tif", "I'd like the nucleus count of a.tif",
                    "mean nuclear area in a.tif"):
        assert "nuclei" in stated_parameters(segmenter, request), request
    for request in ("how many blobs are in a.tif", "count the cells of a.tif",
                    "segment the objects in a.tif"):
        assert "nuclei" not in stated_parameters(segmenter, request), request


def test_named_files_and_questions() -> None:
    assert named_files("measure a.tif and b.ome.tif, e.g. quickly") == ["a.tif", "b.ome.tif"]
    assert named_files("nothing here, version 1.5") == []
    assert is_question("what is a label image?") and not is_question("segment a.tif")


def test_run_plan_without_a_model(data_dir: Path, registry: Registry) -> None:
    ws = Workspace([data_dir], output_root=data_dir.parent / "out")
    from agent.plan import bind_file

    variables = {"cells": bind_file(ws, "cells.tif")}
    checked = parse_plan(COUNT_AND_AREA, registry, variables)
    result = run_plan(checked, ws, registry)
    assert result.answers[0].value == 6 and result.answers[1].unit == "µm²"
    assert result.answers[1].column == "area_um2"


def test_the_grammar_lets_each_parameter_be_written_at_most_once() -> None:
    # The model once wrote `axes="ZYX"` over and over until the token limit under a grammar
    # whose optional parameters formed a repeatable list.
    import tools

    text = plan_grammar(tools.load_all(), ["open_image", "threshold_labeling"],
                        variables={"stack": "image"}, max_calls=2)
    call = next(r for r in text.splitlines() if r.startswith("l1-call-open-image ::="))
    assert ")*" not in call and ")+" not in call
    assert call.count("arg-open-image-axes") == 1
    labeling = next(r for r in text.splitlines()
                    if r.startswith("l1-call-threshold-labeling ::="))
    assert ")*" not in labeling


def test_a_statistic_asked_for_needs_a_table_and_answers_are_bounded() -> None:
    import tools

    registry = tools.load_all()
    text = plan_grammar(registry, ["measure_objects"], variables={"cells": "labels"},
                        max_calls=2, statistic=True)
    rules = dict(line.split(" ::= ", 1) for line in text.splitlines() if " ::= " in line)
    assert "answer-0" not in rules  # a count of the labels alone cannot answer "the mean"
    assert "stat" in rules["answer-1"] and "*" not in rules["answer-1"]
    plain = plan_grammar(registry, ["measure_objects"], variables={"cells": "labels"},
                         max_calls=2)
    assert "answer-0" in plain and ")*" not in plain.split("answer-0 ::=")[1].splitlines()[0]


def test_a_conceptual_question_may_only_be_replied_to() -> None:
    import tools

    text = plan_grammar(tools.load_all(), ["denoise_nlm"], variables={"nuclei": "image"},
                        reply_only=True)
    assert text.splitlines()[0] == "root ::= reply"


@pytest.mark.parametrize(("request_text", "offered"), [
    ("Count the bright cells in cells.tif. Give the number only, no words.", False),
    ("cells.tif: I only need the object count", False),
    ("Do not explain, just count the cells in cells.tif", False),
    ("Count the cells in cells.tif but not the ones on the image edge", True),
    ("How many complete cells are there in cells.tif, leaving out partial ones?", True),
    ("Count every cell in cells.tif, the ones touching the border included", False),
])
def test_border_removal_is_offered_and_shown_only_when_the_request_asks_for_it(
        data_dir: Path, request_text: str, offered: bool) -> None:
    """An excluding word alone ("only", "no", "not") asks for no border rule: the tool is not
    in the grammar, and no worked example that calls it is shown."""
    from rag_index.cookbook import search

    count = plan("labels1 = segment_objects(image=cells)", "answer(count(labels1))")
    workspace = Workspace([data_dir], output_root=data_dir.parent / "out")
    everything = load_registry()
    agent = Agent(ScriptedChatModel(replies=[count]), session=Session(workspace),
                  registry=everything, retriever=KeywordRetriever(everything),
                  examples=lambda request, k=3: list(search(request, k=k)),
                  model_info=ModelInfo("scripted", "scripted"))
    reply = agent.ask(request_text)
    assert reply.values == [6]
    seen = agent.model.seen[0]
    assert ('"remove_border_objects("' in seen["grammar"]) is offered
    if not offered:
        assert "remove_border_objects" not in seen["user"]


@pytest.mark.parametrize(("request_text", "offered"), [
    ("How many blobs are in cells.tif? Respond with the number only.", False),
    ("cells.tif: number of cells?", False),
    ("Threshold cells.tif with Otsu and count the connected objects.", True),
    ("Binarize cells.tif and count the regions", True),
])
def test_a_plain_threshold_is_offered_only_when_the_request_asks_for_one(
        data_dir: Path, request_text: str, offered: bool) -> None:
    """For "how many" the default segmenter picks the method; a plain threshold, which
    merges touching objects, is in the grammar only when the request speaks of one."""
    from rag_index.cookbook import search

    tool = "threshold_labeling" if offered else "segment_objects"
    count = plan(f"labels1 = {tool}(image=cells)", "answer(count(labels1))")
    workspace = Workspace([data_dir], output_root=data_dir.parent / "out")
    everything = load_registry()
    agent = Agent(ScriptedChatModel(replies=[count]), session=Session(workspace),
                  registry=everything, retriever=KeywordRetriever(everything),
                  examples=lambda request, k=3: list(search(request, k=k)),
                  model_info=ModelInfo("scripted", "scripted"))
    reply = agent.ask(request_text)
    assert reply.values == [6]
    seen = agent.model.seen[0]
    assert ('"threshold_labeling("' in seen["grammar"]) is offered
    assert '"segment_objects("' in seen["grammar"]
