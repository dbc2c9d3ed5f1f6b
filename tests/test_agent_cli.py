"""`bia run` and `bia chat` with a scripted model, and how a backend is chosen."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import agent.commands as commands
from agent.backends import BackendError, ModelInfo, ScriptedChatModel, make_chat_model
from agent.cli import main
from tests.scripted import plan
from tests.test_agent_loop import data_dir  # noqa: F401 - fixture


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch):
    """Make the CLI build a scripted model with the replies a test sets."""
    replies: list = []

    def fake(model=None, *, base_url=None, api_key=None, vision=None, progress=True):
        return ScriptedChatModel(replies=replies), ModelInfo("scripted", "scripted")

    monkeypatch.setattr(commands, "make_chat_model", fake)
    return replies


def test_bia_run_prints_answer_and_table_and_saves_the_session(
    data_dir: Path, scripted: list, monkeypatch, capsys  # noqa: F811
) -> None:
    scripted += [plan("labels1 = voronoi_otsu_labeling(image=cells)",
                      "table2 = measure_objects(labels=labels1)",
                      'answer(count(labels1), mean(table2, "area"))')]
    monkeypatch.chdir(data_dir)
    code = main(["run", "segment the nuclei in cells.tif and measure their area",
                 "--outdir", str(data_dir.parent / "out"), "--quiet"])
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith("6 nuclei (voronoi_otsu_labeling")
    assert "cells_labels_measurements: 6 rows" in out and "area_um2" in out
    session = next((data_dir.parent / "out").glob("session-*"))
    assert (session / "session.py").exists()
    record = json.loads((session / "provenance.json").read_text())
    assert record["requests"] == ["segment the nuclei in cells.tif and measure their area"]
    assert (session / "cells_labels_measurements.csv").exists()


def test_bia_chat_keeps_the_conversation_until_quit(
    data_dir: Path, scripted: list, monkeypatch, capsys  # noqa: F811
) -> None:
    scripted += [plan("labels1 = voronoi_otsu_labeling(image=cells)", "answer(count(labels1))"),
                 plan("table1 = measure_objects(labels=cells_labels)",
                      'answer(mean(table1, "area"))')]
    lines = iter(["segment cells.tif", "/artifacts", "now measure them", "/quit"])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(lines))
    monkeypatch.chdir(data_dir)
    assert main(["chat", "--outdir", str(data_dir.parent / "out"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "6 cells (voronoi_otsu_labeling" in out and "Mean area:" in out
    assert "cells_labels: labels 128x128" in out
    session = next((data_dir.parent / "out").glob("session-*"))
    script = (session / "session.py").read_text()
    assert "voronoi_otsu_labeling(" in script and "measure_objects(" in script


def test_config_file_and_environment_choose_a_server(tmp_path, monkeypatch) -> None:
    for name in ("BIA_MODEL", "BIA_BASE_URL", "BIA_API_KEY", "OPENAI_BASE_URL",
                 "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "config.toml"
    config.write_text('[model]\nmodel = "llava:13b"\nbase_url = "http://localhost:11434/v1"\n')
    monkeypatch.setenv("BIA_CONFIG", str(config))
    chat, info = make_chat_model()
    assert info.backend == "openai" and info.name == "llava:13b"
    assert info.base_url == "http://localhost:11434/v1" and info.vision
    monkeypatch.setenv("BIA_MODEL", "qwen2.5:7b")
    chat, info = make_chat_model()
    assert info.name == "qwen2.5:7b" and not info.vision
    assert chat.model_name == "qwen2.5:7b"


def test_a_server_model_without_a_server_is_a_clear_error(tmp_path, monkeypatch) -> None:
    for name in ("BIA_MODEL", "BIA_BASE_URL", "BIA_API_KEY", "OPENAI_BASE_URL",
                 "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BIA_CONFIG", str(tmp_path / "none.toml"))
    with pytest.raises(BackendError, match="needs a server: give --base-url"):
        make_chat_model("gpt-4o-mini")


def test_missing_weights_tell_how_to_fetch_them(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("BIA_CACHE", str(tmp_path))
    monkeypatch.setenv("BIA_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.delenv("BIA_MODEL", raising=False)
    monkeypatch.delenv("BIA_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(BackendError, match=r"python -m agent\.weights fetch --size 1\.5b"):
        make_chat_model("1.5b", progress=False)


def test_bia_run_reports_backend_errors_without_a_traceback(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BIA_CACHE", str(tmp_path))
    monkeypatch.setenv("BIA_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.delenv("BIA_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    assert main(["run", "hello", "--model", "0.5b", "--quiet"]) == 1
    assert "agent.weights fetch" in capsys.readouterr().err


def test_bia_demo_asks_the_model_and_checks_the_truth(tmp_path, monkeypatch, capsys) -> None:
    import agent.backends

    replies = [plan("image1 = denoise_nlm(image=nuclei)",
                    "labels2 = voronoi_otsu_labeling(image=image1, spot_sigma=3, outline_sigma=1)",
                    "table3 = measure_objects(labels=labels2, image=nuclei)",
                    'answer(count(labels2), mean(table3, "area"))')]
    monkeypatch.setattr(agent.backends, "make_chat_model", lambda *a, **k: (
        ScriptedChatModel(replies=replies), ModelInfo("scripted", "scripted")))
    assert main(["demo", "--outdir", str(tmp_path)]) == 0
    out = " ".join(capsys.readouterr().out.split())  # rich wraps long lines
    assert re.search(r"\d+ nuclei \(denoise_nlm.*voronoi_otsu_labeling", out)
    assert "ground truth: 120 nuclei" in out
    assert "segmented: nuclei_denoise_nlm (made by denoise_nlm)" in out
    session = next(tmp_path.glob("session-*"))
    record = json.loads((session / "provenance.json").read_text())
    assert record["report"]["ground_truth"]["f1_iou50"] > 0.85
    assert record["requests"][0].startswith("Denoise nuclei.tif, then segment")
    assert (session / "session.py").exists()
