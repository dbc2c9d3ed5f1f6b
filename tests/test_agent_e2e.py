"""End to end: the real embedded model writes the plans; results are checked against ground truth.

Needs llama-cpp-python and the fetched default weights (``make test`` installs and fetches both);
skipped, with the reason, only where either is missing. Every case asserts the outcome: the
steps that ran on the right inputs and the answered number against the known truth. Run with
one thread (``BIA_THREADS=1``) it takes a few minutes on 2 cores.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest
import tifffile

from agent import weights
from tools.synthetic import blobs

pytestmark = pytest.mark.slow

SIZE = weights.DEFAULT_SIZE
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TRUE_NUCLEI = 120
N_BLOBS = 30


def _missing() -> str | None:
    if importlib.util.find_spec("llama_cpp") is None:
        return "llama-cpp-python is not installed (pip install -e '.[llm]')"
    if not weights.is_verified(SIZE):
        return (f"embedded model weights not fetched: python -m agent.weights fetch --size "
                f"{SIZE}")
    return None


@pytest.fixture(scope="module")
def agent(tmp_path_factory):
    reason = _missing()
    if reason:
        pytest.skip(reason)
    from agent.backends import embedded_chat_model
    from agent.planner import Agent
    from agent.session import Session
    from tools.workspace import Workspace

    folder = tmp_path_factory.mktemp("data")
    shutil.copy(EXAMPLES / "nuclei.tif", folder / "nuclei.tif")
    shutil.copy(EXAMPLES / "nuclei_labels.tif", folder / "nuclei_labels.tif")
    spots = blobs(N_BLOBS, seed=3)
    tifffile.imwrite(folder / "spots.tif", (spots.image * 200).clip(0, 255).astype(np.uint8))
    model, info = embedded_chat_model(SIZE, progress=False)
    workspace = Workspace([folder], output_root=folder.parent / "out")
    return Agent(model, session=Session(workspace, model_info=info), model_info=info)


def test_denoise_segment_measure_runs_the_named_steps_on_the_right_inputs(agent) -> None:
    from agent.demo import DEMO_REQUEST

    reply = agent.ask(DEMO_REQUEST.format(image="nuclei.tif"))
    assert reply.stopped is None, reply.text
    tools = [e.tool for e in reply.tool_calls]
    assert tools[0].startswith("denoise") and "voronoi_otsu_labeling" in tools
    assert tools[-1] == "measure_objects"
    workspace = agent.session.workspace
    labels = next(n for n in reply.outputs if workspace.artifacts[n].kind == "labels")
    segmented = workspace.artifacts[labels].provenance["inputs"]["image"]
    assert workspace.artifacts[segmented].provenance.get("tool", "").startswith("denoise")
    count = int(np.unique(workspace.artifacts[labels].data).size - 1)
    assert abs(count - TRUE_NUCLEI) <= 0.15 * TRUE_NUCLEI, reply.text
    assert str(count) in reply.text


def test_a_follow_up_filters_the_earlier_table(agent) -> None:
    reply = agent.ask("and how many of those nuclei are larger than 60 µm²?")
    assert reply.stopped is None, reply.text
    workspace = agent.session.workspace
    table = [a for a in workspace if a.kind == "table"][-1].data
    assert reply.values and reply.values[0] == int((table["area_um2"] > 60).sum())


def test_how_many_blobs_matches_the_true_count(agent) -> None:
    reply = agent.ask("How many blobs are in spots.tif?")
    assert reply.stopped is None, reply.text
    assert reply.values and abs(reply.values[0] - N_BLOBS) <= 3, reply.text


def test_the_mean_area_of_a_label_file_is_exact(agent) -> None:
    from tools.io import read_image
    from tools.measure import measure_objects

    reply = agent.ask("What is the mean area of the objects in nuclei_labels.tif?")
    assert reply.stopped is None, reply.text
    truth, meta = read_image(EXAMPLES / "nuclei_labels.tif")
    expected = measure_objects(truth.astype(np.int32), pixel_size=meta.pixel_size())
    column = "area_um2" if "area_um2" in expected else "area_px"
    assert any(v == pytest.approx(expected[column].mean(), rel=1e-6) for v in reply.values), (
        reply.text)


def test_a_plain_question_calls_no_tool(agent) -> None:
    before = len(agent.session.calls)
    reply = agent.ask("What does non-local means denoising do?")
    assert reply.stopped is None and not reply.tool_calls
    assert len(agent.session.calls) == before and len(reply.text) > 20
