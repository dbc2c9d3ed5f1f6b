"""The %bia magic in a real IPython shell, with a scripted chat model and real tools."""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from stardist.matching import matching

from tests.scripted import plan
from tools.io import write_image
from tools.synthetic import nuclei_2d

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("agent.planner") is None,
    reason="the %bia magic needs the agent (agent.planner), which lands from its own branch",
)

PARAMS = {"spot_sigma": 3.0, "outline_sigma": 1.0}




@pytest.fixture
def shell(tmp_path: Path):
    from IPython.core.interactiveshell import InteractiveShell

    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "agent.jupyter")
    yield ip
    ip.run_line_magic("unload_ext", "agent.jupyter")
    for name in ("nuclei", "nuclei_labels", "cells_table"):
        ip.user_ns.pop(name, None)


def scripted(shell, tmp_path: Path, replies: list):
    from agent.jupyter import configure

    backends = importlib.import_module("agent.backends")
    model = backends.ScriptedChatModel(replies=replies)
    info = backends.ModelInfo("scripted", "scripted")
    return configure(shell, chat_model=model, model_info=info, roots=[tmp_path],
                     outdir=tmp_path / "out")


def test_bia_magic_segments_a_notebook_array_and_returns_the_table(shell, tmp_path,
                                                                     capsys) -> None:
    data = nuclei_2d((256, 256), n_nuclei=35, seed=21)
    shell.user_ns["nuclei"] = data.image
    shell.user_ns["not_an_image"] = np.arange(5)  # 1D: not offered
    session = scripted(shell, tmp_path, [
        plan("labels1 = voronoi_otsu_labeling(image=nuclei, spot_sigma=3.0, outline_sigma=1.0)",
             "table2 = measure_objects(labels=labels1, image=nuclei)",
             "answer(count(labels1), show(table2))"),
    ])
    table = shell.run_line_magic("bia", "segment the nuclei in nuclei and measure them")
    assert isinstance(table, pd.DataFrame)
    assert "nuclei (voronoi_otsu_labeling" in capsys.readouterr().out
    labels = session.workspace.artifacts["nuclei_labels"].data
    assert len(table) == labels.max()
    assert abs(len(table) - data.n_objects) <= 0.25 * data.n_objects
    assert matching(data.labels, labels, thresh=0.5).f1 > 0.7
    assert "not_an_image" not in session.workspace
    # the model saw the notebook variable by name
    prompt = session.agent.model.seen[0]["user"]
    assert "nuclei (image 256x256" in prompt


def test_cell_magic_reads_files_and_reassigned_variables_are_refreshed(shell, tmp_path) -> None:
    data = nuclei_2d((128, 128), n_nuclei=12, seed=3)
    write_image(tmp_path / "cells.tif", data.image, data.meta)
    shell.user_ns["nuclei"] = np.zeros((8, 8), np.float32)
    session = scripted(shell, tmp_path, [
        plan("labels1 = voronoi_otsu_labeling(image=cells, spot_sigma=3.0, outline_sigma=1.0)",
             "answer(show(labels1))"),
    ])
    labels = shell.run_cell_magic("bia", "", "segment the nuclei\nin cells.tif")
    assert isinstance(labels, np.ndarray) and labels.shape == (128, 128) and labels.max() > 5
    first = session.workspace.artifacts["nuclei"].data
    shell.user_ns["nuclei"] = np.ones((16, 16), np.float32)
    assert session.sync_variables() == ["nuclei"]
    assert session.workspace.artifacts["nuclei"].data.shape == (16, 16)
    assert first.shape == (8, 8)
    assert session.sync_variables() == []  # unchanged: nothing to do


def test_export_writes_a_script_and_bad_input_is_a_message(shell, tmp_path, capsys) -> None:
    data = nuclei_2d((128, 128), n_nuclei=10, seed=4)
    shell.user_ns["nuclei"] = data.image
    scripted(shell, tmp_path, [plan("labels1 = voronoi_otsu_labeling(image=nuclei)",
                                    "answer(count(labels1))")])
    assert shell.run_line_magic("bia", "   ") is None
    assert "usage: %bia" in capsys.readouterr().err
    shell.run_line_magic("bia", "segment nuclei")
    exported = shell.run_line_magic("bia_export", str(tmp_path / "exported"))
    script = Path(exported.script).read_text()
    assert "voronoi_otsu_labeling(" in script
    shell.run_line_magic("bia_config", "colour=red")
    assert "unknown %bia_config option 'colour'" in capsys.readouterr().err
