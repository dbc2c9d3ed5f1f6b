"""The MCP server's ``ask`` tool runs the planner in the server's workspace (scripted plan)."""

from __future__ import annotations

from pathlib import Path

from agent.backends import ModelInfo, ScriptedChatModel
from agent.mcp_server import BiaMCP
from tests.scripted import plan
from tests.test_agent_loop import data_dir  # noqa: F401 - fixture
from tools.workspace import Workspace


def test_ask_answers_with_the_plan_values_and_saved_files(data_dir: Path) -> None:  # noqa: F811
    model = ScriptedChatModel(replies=[
        plan("labels1 = threshold_labeling(image=cells)", "answer(count(labels1))"),
        'answer(count(cells_labels))'])
    state = BiaMCP(Workspace([data_dir], output_root=data_dir.parent / "out"),
                   chat_model=(model, ModelInfo("scripted", "scripted")))
    assert "ask" in [t.name for t in state.mcp_tools()]
    text, structured, error = state.call("ask", {"request": "count the cells in cells.tif"})
    assert not error and text.startswith("6 cells (threshold_labeling")
    assert structured["values"] == [6] and structured["plan"].startswith("labels1 = ")
    assert Path(structured["files"]["cells_labels"]).exists()
    # the next request sees the artifact made by the first
    text, structured, error = state.call("ask", {"request": "and how many are there now?"})
    assert not error and structured["values"] == [6]
    assert "cells_labels (labels 128x128" in model.seen[1]["user"]
    text, _, error = state.call("ask", {"request": "  "})
    assert error and "non-empty" in text
