"""The agent loop with a scripted model: real tools on real arrays, only the LLM is written."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from langchain_core.messages import AIMessage, ToolMessage
from skimage.draw import disk

from agent.backends import ModelInfo, ScriptedChatModel
from agent.loop import Agent, drop_unrequested, is_question
from agent.retrieval import KeywordRetriever, RagRetriever, default_retriever
from agent.session import Session
from agent.toolset import load_registry
from tests.scripted import call, last_output
from tools.io import read_image, write_image
from tools.registry import Registry, tool
from tools.types import Image, ImageMeta, Labels, Table
from tools.workspace import Workspace

REPO = Path(__file__).resolve().parents[1]
PIXEL_UM = 0.5
DISCS = [((20, 24), 7), ((22, 80), 9), ((64, 40), 6), ((70, 100), 8), ((105, 20), 7),
         ((108, 75), 10)]


OWN = Registry()


@tool(category="measure", registry=OWN)
def count_bright(image: Image, level: float = 0.5) -> Table:
    """Count pixels above a level.

    Parameters
    ----------
    image : Image
        Any image.
    level : float
        Threshold.

    Returns
    -------
    Table
        One row with the count.
    """
    return pd.DataFrame({"count": [int((image > level).sum())]})




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
    return folder


@pytest.fixture
def registry() -> Registry:
    """The three demo tools only, so that tests do not depend on which other tools exist."""
    everything = load_registry()
    own = Registry()
    for name in ("denoise_nlm", "voronoi_otsu_labeling", "measure_objects"):
        own.register(everything.get(name))
    return own


def make_agent(data_dir: Path, replies: list, registry: Registry, **kwargs) -> Agent:
    workspace = Workspace([data_dir], output_root=data_dir.parent / "out")
    model = ScriptedChatModel(replies=replies)
    info = kwargs.pop("model_info", ModelInfo("scripted", "scripted", drop_unrequested=True))
    kwargs.setdefault("retriever", KeywordRetriever(registry))
    return Agent(model, session=Session(workspace), registry=registry, model_info=info,
                 **kwargs)


def true_areas_um2() -> list[float]:
    areas = []
    for center, radius in DISCS:
        mask = np.zeros((128, 128), bool)
        mask[disk(center, radius, shape=mask.shape)] = True
        areas.append(mask.sum() * PIXEL_UM**2)
    return areas


def test_multi_step_request_runs_three_tools_in_one_turn(data_dir: Path, registry) -> None:
    replies = [
        call("denoise_nlm", image="cells.tif"),
        lambda m: call("voronoi_otsu_labeling", image=last_output(m)),
        lambda m: call("measure_objects", labels=last_output(m)),
        "I found 6 nuclei; their mean area is in the table.",
    ]
    agent = make_agent(data_dir, replies, registry)
    reply = agent.ask("denoise cells.tif, then segment the nuclei, then measure their area")
    assert [e.tool for e in reply.tool_calls] == [
        "denoise_nlm", "voronoi_otsu_labeling", "measure_objects"]
    assert reply.stopped is None and reply.model_calls == 4
    table = agent.session.workspace.artifacts[reply.outputs[-1]].data
    assert len(table) == len(DISCS)
    # Each measured area matches its disc (found by centroid) within 12 %.
    for (center, _), truth in zip(DISCS, true_areas_um2(), strict=True):
        dist = np.hypot(table["centroid_y_um"] - center[0] * PIXEL_UM,
                        table["centroid_x_um"] - center[1] * PIXEL_UM)
        row = table.loc[dist.idxmin()]
        assert dist.min() < 1.0
        assert row["area_um2"] == pytest.approx(truth, rel=0.12)
    # Results reached the model as summaries, never as whole arrays.
    tool_texts = [m.content for m in agent.session.messages if isinstance(m, ToolMessage)]
    assert all(len(t) < 2000 for t in tool_texts)
    assert "6 objects" in tool_texts[1]
    assert "table with 6 rows" in tool_texts[2] and "centroid_y_um" in tool_texts[2]
    assert 'pass "cells_denoise_nlm_labels"' in tool_texts[1]


def test_exported_script_reproduces_the_tables_exactly(data_dir: Path, registry) -> None:
    replies = [
        call("denoise_nlm", image="cells.tif", strength=0.6),
        lambda m: call("voronoi_otsu_labeling", image=last_output(m), spot_sigma=3),
        lambda m: call("measure_objects", labels=last_output(m), image="cells.tif"),
        "Done.",
    ]
    agent = make_agent(data_dir, replies, registry, model_info=ModelInfo(
        "embedded", "Qwen test", file="/x/model.gguf", sha256="ab" * 32, drop_unrequested=True))
    agent.ask("denoise cells.tif with strength 0.6, segment with spot sigma 3, measure "
              "intensities in cells.tif")
    exported = agent.session.export()
    script = exported.script.read_text()
    assert "spot_sigma=3" in script and "strength=0.6" in script
    assert "PixelSize(spacing=(0.5, 0.5), unit='µm')" in script
    target = exported.folder / "rerun"
    done = subprocess.run([sys.executable, str(exported.script), str(target)], cwd=data_dir,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    tables = [p for p in exported.outputs.values() if p.suffix == ".csv"]
    assert len(tables) == 1
    for original in tables:
        again = target / original.name
        assert again.read_bytes() == original.read_bytes()
    labels = next(p for name, p in exported.outputs.items() if name.endswith("_labels"))
    first, meta1 = read_image(labels)
    second, meta2 = read_image(target / labels.name)
    np.testing.assert_array_equal(first, second)
    assert meta1.spacing == meta2.spacing == {"Y": PIXEL_UM, "X": PIXEL_UM}

    provenance = json.loads(exported.provenance.read_text())
    assert provenance["model"]["sha256"] == "ab" * 32
    assert provenance["inputs"]["cells"]["sha256"] == pytest.approx(
        agent.session.workspace.artifacts["cells"].provenance["sha256"])
    assert [c["tool"] for c in provenance["calls"]] == [
        "denoise_nlm", "voronoi_otsu_labeling", "measure_objects"]
    assert provenance["calls"][1]["arguments"]["spot_sigma"] == 3
    assert "numpy" in provenance["versions"] and "scikit-image" in provenance["versions"]


def test_validation_error_goes_back_to_the_model_which_retries(data_dir: Path, registry):
    replies = [
        call("voronoi_otsu_labeling", image="cells.tif", spot_sigma="big"),
        call("voronoi_otsu_labeling", image="cells.tif", spot_sigma=2),
        "Segmented.",
    ]
    agent = make_agent(data_dir, replies, registry, drop_unrequested=False)
    reply = agent.ask("segment cells.tif with spot sigma 2")
    assert [e.kind for e in reply.events] == ["error", "call"]
    assert "spot_sigma" in reply.events[0].message
    seen = agent.model.seen[1]["messages"]
    assert isinstance(seen[-1], ToolMessage) and "spot_sigma" in seen[-1].content
    assert reply.stopped is None and reply.outputs == ["cells_labels"]


def test_wrong_type_of_a_required_argument_is_reported(data_dir: Path, registry) -> None:
    # A small model gets one more try after a failed call; this one declines it.
    replies = [call("voronoi_otsu_labeling", image=42), "I could not.", "I could not."]
    agent = make_agent(data_dir, replies, registry)
    reply = agent.ask("segment image 42")
    assert reply.events[0].kind == "error"
    assert "parameter 'image'" in reply.events[0].message
    assert reply.text == "I could not." and len(agent.model.seen) == 3


def test_malformed_json_and_unknown_tool_become_messages(data_dir: Path, registry) -> None:
    replies = [
        '<tool_call>\n{"name": "denoise_nlm", "arguments": {"image": }\n</tool_call>',
        call("segment_nuclei", image="cells.tif"),
        call("voronoi_otsu_labeling", image="cells.tif"),
        "Done.",
    ]
    agent = make_agent(data_dir, replies, registry, max_retries=2)
    reply = agent.ask("segment cells.tif")
    kinds = [e.kind for e in reply.events]
    assert kinds == ["error", "error", "call"]
    assert "not valid JSON" in reply.events[0].message
    assert "unknown tool 'segment_nuclei'" in reply.events[1].message
    assert "Use one of: denoise_nlm, voronoi_otsu_labeling, measure_objects" in reply.events[
        1].message  # the tools offered, not every registered one
    assert reply.stopped is None


def test_hostile_path_is_refused_without_crashing(data_dir: Path, registry) -> None:
    replies = [call("denoise_nlm", image="../../../../etc/passwd"),
               "I cannot read files outside the workspace."]
    agent = make_agent(data_dir, replies, registry)
    reply = agent.ask("denoise ../../../../etc/passwd")
    assert reply.events[0].kind == "error"
    assert "outside the workspace" in reply.events[0].message
    assert reply.text == "I cannot read files outside the workspace."
    assert not agent.session.calls


def test_step_limit_stops_the_turn(data_dir: Path, registry) -> None:
    replies = [call("denoise_nlm", image="cells.tif")] + [
        lambda m: call("denoise_nlm", image=last_output(m))] * 4
    agent = make_agent(data_dir, replies, registry, max_steps=3, drop_unrequested=False)
    reply = agent.ask("denoise cells.tif forever")
    assert reply.stopped == "step_limit" and reply.model_calls == 3
    assert len(agent.model.seen) == 3
    assert "3 steps" in reply.text and reply.text.startswith("Done: denoise_nlm")


def test_asking_again_for_a_finished_call_ends_the_turn(data_dir: Path, registry) -> None:
    replies = [call("denoise_nlm", image="cells.tif"), call("denoise_nlm", image="cells.tif")]
    agent = make_agent(data_dir, replies, registry)
    reply = agent.ask("denoise cells.tif")
    assert [e.kind for e in reply.events] == ["call"] and reply.stopped is None
    assert reply.text.startswith('Done: denoise_nlm -> cells_denoise_nlm. Stored "cells_denoise')
    assert len(agent.session.calls) == 1
    # A small model chaining a tool onto its own output is stopped the same way.
    chained = make_agent(data_dir, [call("denoise_nlm", image="cells.tif"),
                                    lambda m: call("denoise_nlm", image=last_output(m))],
                         registry)
    assert chained.ask("denoise cells.tif").text.startswith("Done: denoise_nlm")
    assert len(chained.session.calls) == 1


def test_repeated_errors_stop_after_one_retry(data_dir: Path, registry) -> None:
    replies = [call("denoise_nlm", image="missing.tif")] * 4
    agent = make_agent(data_dir, replies, registry)
    reply = agent.ask("denoise missing.tif")
    assert reply.stopped == "errors" and reply.model_calls == 2
    assert "missing.tif" in reply.text


def test_a_plain_question_is_answered_without_tools_and_cites(data_dir: Path, registry):
    replies = ["Voronoi-Otsu labeling splits touching nuclei between local maxima [1]."]
    agent = make_agent(data_dir, replies, registry)
    reply = agent.ask("How do I split touching nuclei?")
    assert reply.events == [] and reply.model_calls == 1
    assert [h.title for h in reply.sources] == [agent.retrieve("How do I split touching "
                                                                "nuclei?")[0].title]
    messages = agent.model.seen[0]["messages"]
    assert "[1] voronoi_otsu_labeling" in messages[1].content  # context after the fixed prompt
    assert "[1]" not in messages[0].content


def test_a_question_with_nothing_relevant_says_so(data_dir: Path, registry) -> None:
    agent = make_agent(data_dir, ["Paris is the capital of France."], registry)
    reply = agent.ask("What is the capital of France?")
    assert reply.sources == []
    assert reply.text.startswith("Nothing relevant was found")


def test_invented_optional_numbers_are_dropped(data_dir: Path, registry) -> None:
    replies = [call("voronoi_otsu_labeling", image="cells.tif", spot_sigma=5, outline_sigma=1),
               "ok"]
    agent = make_agent(data_dir, replies, registry)
    reply = agent.ask("segment cells.tif with outline sigma 1")
    event = reply.events[0]
    assert event.dropped == ["spot_sigma"]
    assert event.arguments["spot_sigma"] == 2.0 and event.arguments["outline_sigma"] == 1


def test_small_models_see_only_the_optional_parameters_the_user_named(data_dir, registry):
    agent = make_agent(data_dir, [call("voronoi_otsu_labeling", image="cells.tif"), "ok"],
                       registry)
    agent.ask("segment cells.tif with a spot sigma of 3")
    shown = {t["function"]["name"]: t["function"] for t in agent.model.seen[0]["tools"]}
    assert set(shown["voronoi_otsu_labeling"]["parameters"]["properties"]) == {
        "image", "spot_sigma"}
    assert set(shown["measure_objects"]["parameters"]["properties"]) == {"labels", "image"}
    assert "\n" not in shown["voronoi_otsu_labeling"]["description"]
    full = make_agent(data_dir, ["ok"], registry, drop_unrequested=False)
    full.ask("segment cells.tif")
    props = full.model.seen[0]["tools"][0]["function"]["parameters"]["properties"]
    assert len(props) > 2


def test_drop_unrequested_keeps_stated_values_and_artifacts(registry) -> None:
    measure = registry.get("denoise_nlm")
    kept, dropped = drop_unrequested(
        measure, {"image": "a.tif", "strength": 1.5, "patch_size": 7}, "use strength 1.5")
    assert kept == {"image": "a.tif", "strength": 1.5} and dropped == ["patch_size"]


def test_tool_bug_becomes_an_error_message(data_dir: Path) -> None:
    own = Registry()

    @tool(category="filter", registry=own)
    def broken_filter(image: Image) -> Image:
        """Fail on purpose.

        Parameters
        ----------
        image : Image
            Any image.

        Returns
        -------
        Image
            Never.
        """
        raise ZeroDivisionError("boom")

    agent = make_agent(data_dir, [call("broken_filter", image="cells.tif"), "It failed."], own)
    reply = agent.ask("run broken_filter on cells.tif")
    assert reply.events[0].kind == "error"
    assert "ZeroDivisionError: boom" in reply.events[0].message


def test_large_registries_show_a_shortlist(data_dir: Path) -> None:
    own = Registry()
    for i in range(15):
        def make(i: int):
            def f(image: Image) -> Image:
                return image
            f.__name__ = f"filter_{i}"
            f.__doc__ = (f"Apply smoothing variant {i}.\n\nParameters\n----------\nimage : Image"
                         "\n    Any image.\n\nReturns\n-------\nImage\n    Smoothed.")
            return f
        tool(make(i), category="filter", registry=own)

    @tool(category="segment", registry=own)
    def threshold_nuclei(image: Image) -> Labels:
        """Segment nuclei by a global threshold.

        Parameters
        ----------
        image : Image
            Nuclei image.

        Returns
        -------
        Labels
            Nuclei.
        """
        return (image > image.mean()).astype(np.int32)

    agent = make_agent(data_dir, ["ok"], own, max_tools=4)
    agent.ask("threshold the nuclei in cells.tif")
    offered = [t["function"]["name"] for t in agent.model.seen[0]["tools"]]
    assert offered[0] == "threshold_nuclei" and len(offered) <= 6


def test_rag_retriever_falls_back_to_keywords_when_the_index_fails(registry) -> None:
    def search(query, *, k=5, kinds=None):
        raise RuntimeError("index not built")

    broken = types.SimpleNamespace(search=search, shortlist_tools=lambda q, *, k=8: ["nope"])
    retriever = RagRetriever(broken, registry)
    hits = retriever.search("denoise a noisy image")
    assert hits[0].title == "denoise_nlm" and "index not built" in retriever.last_error
    assert retriever.shortlist_tools("denoise a noisy image")[0] == "denoise_nlm"
    assert isinstance(default_retriever(registry), KeywordRetriever | RagRetriever)


def test_is_question() -> None:
    assert is_question("What is Otsu thresholding?")
    assert is_question("how do I measure areas")
    assert not is_question("segment the nuclei in a.tif")


def test_session_export_saves_arrays_that_were_never_files(tmp_path: Path) -> None:
    workspace = Workspace([tmp_path], output_root=tmp_path / "out")
    workspace.add("blobs", np.random.default_rng(1).random((16, 16)), kind="image")
    agent = Agent(ScriptedChatModel(replies=[call("count_bright", image="blobs", level=0.25),
                                             "ok"]),
                  session=Session(workspace), registry=OWN)
    agent.ask("count bright pixels in blobs above 0.25")
    exported = agent.session.export(tmp_path / "export")
    assert (tmp_path / "export" / "inputs" / "blobs.ome.tif").exists()
    done = subprocess.run([sys.executable, str(exported.script), str(tmp_path / "again")],
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    original = next(iter(exported.outputs.values()))
    assert (tmp_path / "again" / original.name).read_bytes() == original.read_bytes()


def test_ai_message_with_invalid_calls_is_rendered_for_the_template() -> None:
    from agent.backends import message_from_text, to_template_messages

    message = message_from_text('<tool_call>{"name": "x", "arguments": {"a": }</tool_call>')
    assert message.invalid_tool_calls and not message.tool_calls
    rendered = to_template_messages([message])
    assert '"arguments": {"a": }' in rendered[0]["content"]
    good = message_from_text(call("x", a=1))
    assert to_template_messages([good])[0]["tool_calls"][0]["function"] == {
        "name": "x", "arguments": {"a": 1}}
    assert isinstance(good, AIMessage)


def test_a_small_model_that_stops_early_is_reminded_of_the_missing_step(data_dir, registry):
    replies = [call("voronoi_otsu_labeling", image="cells.tif"),
               "The nuclei are segmented and their areas measured.",  # claims a step not done
               lambda m: call("measure_objects", labels=last_output(m)),
               "Measured 6 nuclei."]
    agent = make_agent(data_dir, replies, registry)
    reply = agent.ask("Segment the nuclei in cells.tif and measure their area.")
    assert [e.tool for e in reply.tool_calls] == ["voronoi_otsu_labeling", "measure_objects"]
    reminder = agent.model.seen[2]["messages"][-1].content
    assert "Not finished yet" in reminder and "'measure their area'" in reminder
    assert "'cells_labels'" in reminder and reply.text == "Measured 6 nuclei."


def test_an_answer_that_repeats_our_instruction_is_replaced_by_what_was_done(
        data_dir: Path, registry) -> None:
    from agent.loop import NEXT_STEP_HINT

    agent = make_agent(data_dir, [
        call("voronoi_otsu_labeling", image="cells.tif"),
        f"The request was: 'Segment cells.tif'. {NEXT_STEP_HINT}",
    ], registry)
    reply = agent.ask("Segment cells.tif")
    assert NEXT_STEP_HINT[:30] not in reply.text
    assert reply.text.startswith("Done: voronoi_otsu_labeling -> cells_labels")


def test_a_small_model_that_gives_up_on_a_missing_label_image_segments_first(
        data_dir: Path, registry) -> None:
    # The labels were never made; the image is the user's and exists (as the 1.5B model did).
    replies = [call("measure_objects", labels="cells_labels.tif", image="cells.tif"),
               "I'm sorry, 'cells_labels.tif' does not exist.",
               call("voronoi_otsu_labeling", image="cells.tif"),
               lambda m: call("measure_objects", labels=last_output(m)),
               "Measured 6 nuclei."]
    agent = make_agent(data_dir, replies, registry)
    reply = agent.ask("Measure the areas of the nuclei in cells.tif.")
    hint = reply.events[0].message
    assert reply.events[0].kind == "error" and "No artifact or file named" in hint
    assert "nothing has made 'cells_labels.tif'" in hint
    assert "Make it first: call voronoi_otsu_labeling on the image" in hint
    reminder = agent.model.seen[2]["messages"][-1].content
    assert reminder.startswith("Not done yet")
    assert reminder.endswith('Call voronoi_otsu_labeling with {"image": "cells.tif"} now.')
    assert [e.tool for e in reply.tool_calls] == ["voronoi_otsu_labeling", "measure_objects"]
    assert reply.text == "Measured 6 nuclei." and len(agent.session.workspace.get(
        reply.outputs[-1]).data) == len(DISCS)


def test_a_file_the_user_named_that_does_not_exist_ends_the_turn(
        data_dir: Path, registry) -> None:
    replies = [call("voronoi_otsu_labeling", image="absent.tif"),
               "absent.tif does not exist; please check the name."]
    agent = make_agent(data_dir, replies, registry)
    reply = agent.ask("Segment the nuclei in absent.tif.")
    assert len(agent.model.seen) == 2  # no second try: the user's file is missing
    assert reply.text == "absent.tif does not exist; please check the name."
    assert reply.events[0].kind == "error" and "Make it first" not in reply.events[0].message


def test_a_large_model_is_not_pushed_after_a_failed_call(data_dir: Path, registry) -> None:
    replies = [call("measure_objects", labels="cells_labels.tif"),
               "There is no label image yet; segment the nuclei first."]
    agent = make_agent(data_dir, replies, registry,
                       model_info=ModelInfo("server", "large", drop_unrequested=False))
    reply = agent.ask("Measure the areas of the nuclei in cells.tif.")
    assert len(agent.model.seen) == 2 and not reply.tool_calls
    assert reply.text == "There is no label image yet; segment the nuclei first."


def test_an_image_passed_as_labels_gets_the_segmenter_named(data_dir: Path, registry) -> None:
    image, meta = read_image(data_dir / "cells.tif")
    # Floats are never labels (integer images may be).
    write_image(data_dir / "cells.tif", image.astype(np.float32), meta, overwrite=True)
    replies = [call("measure_objects", labels="cells.tif"),
               "You need to segment the image first.",
               call("voronoi_otsu_labeling", image="cells.tif"),
               "Segmented."]
    agent = make_agent(data_dir, replies, registry)
    reply = agent.ask("Count the objects in cells.tif.")
    error = reply.events[0].message
    assert "needs labels" in error and "Make it first: call voronoi_otsu_labeling" in error
    assert "nothing has made" not in error  # the image exists; it is the wrong kind
    assert agent.model.seen[2]["messages"][-1].content.endswith(
        'Call voronoi_otsu_labeling with {"image": "cells.tif"} now.')
    assert [e.tool for e in reply.tool_calls] == ["voronoi_otsu_labeling"]
