"""Stated metadata as options: ``bia run/chat/batch --axes --pixel-size ...``, the UI fields beside
the upload, the MCP server and the Jupyter magic. Each reaches the workspace and changes the
physical result (areas in µm², one row per frame); bad values are refused with a typed message.

The agent itself is replaced by a stand-in that runs fixed registry calls: these tests are
about the options reaching the reads, not about what a model writes.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
import tifffile
from skimage.draw import disk

import agent.commands as commands
import tools
from agent.batch import process_file
from agent.cli import build_parser, main
from agent.options import stated_from_args
from tools.errors import StatedMetadataError
from tools.workspace import Workspace
from ui.handlers import STATED_FIELDS, UISession, UploadError

REGISTRY = tools.load_all()


def _discs(radius: int = 6) -> np.ndarray:
    image = np.zeros((64, 64), np.uint16)
    for centre in ((16, 16), (16, 46), (46, 30)):
        image[disk(centre, radius, shape=image.shape)] = 1000
    return image


def _movie(n_frames: int = 5) -> np.ndarray:
    movie = np.zeros((n_frames, 40, 56), np.uint16)
    for t in range(n_frames):
        movie[t, 16:24, 4 + 3 * t:12 + 3 * t] = 1000
    return movie


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    tifffile.imwrite(data / "blobs.tif", _discs())
    tifffile.imwrite(data / "movie.tif", _movie())
    tifffile.imwrite(data / "calibrated.tif", _discs(), imagej=True, resolution=(10.0, 10.0),
                     metadata={"unit": "um"})
    return data


class StandInAgent:
    """Runs threshold_labeling then measure_objects on the file the request names."""

    def __init__(self, model: Any = None, *, session: Any, **kwargs: Any) -> None:
        self.session = session
        self.model_info = kwargs.get("model_info")

    def ask(self, request: str) -> Any:
        ws = self.session.workspace
        name = next(word for word in request.split() if word.endswith(".tif"))
        labels = REGISTRY.run(ws, "threshold_labeling", {"image": name}).outputs[0]
        table = REGISTRY.run(ws, "measure_objects", {"labels": labels}).outputs[0]
        return SimpleNamespace(text="measured", outputs=[labels, table], sources=[],
                               stopped=None, events=[], plan=None, values=[])


@pytest.fixture
def stand_in(monkeypatch: pytest.MonkeyPatch) -> None:
    from agent.backends import ModelInfo

    monkeypatch.setattr(commands, "make_chat_model",
                        lambda *a, **k: (None, ModelInfo("stand-in", "scripted")))
    monkeypatch.setattr(commands, "Agent", StandInAgent)


# -- command line ---------------------------------------------------------------------------------


@pytest.mark.parametrize("verb", ["run", "chat", "batch", "serve-mcp"])
def test_every_verb_takes_the_statement_options(verb):
    parser = build_parser([verb])
    extra = ["request"] if verb == "run" else ["a.json", "folder", "--out", "o"] \
        if verb == "batch" else []
    args = parser.parse_args([verb, *extra, "--axes", "TYX", "--pixel-size", "0.2",
                              "--unit", "um", "--z-step", "2", "--time-step", "5",
                              "--time-unit", "min", "--channel-names", "DAPI,GFP"])
    assert stated_from_args(args) == {
        "axes": "TYX", "pixel_size": 0.2, "unit": "µm", "z_step": 2.0, "time_step": 5.0,
        "time_unit": "min", "channel_names": ["DAPI", "GFP"]}
    args = parser.parse_args([verb, *extra, "--pixel-size", "2", "0.3", "0.3"])
    assert stated_from_args(args) == {"pixel_size": {"Z": 2.0, "Y": 0.3, "X": 0.3}}


def test_bia_run_pixel_size_option_gives_square_micrometres_and_shows_the_reading(
        folder, tmp_path, stand_in, monkeypatch, capsys):
    monkeypatch.chdir(folder)
    code = main(["run", "measure the blobs in blobs.tif", "--pixel-size", "0.2", "--unit",
                 "um", "--outdir", str(tmp_path / "out"), "--quiet"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "read blobs: axes YX; pixel size 0.2 µm (you said so; the file had none)" in out
    assert "area_um2" in out
    session = next((tmp_path / "out").glob("session-*"))
    table = pd.read_csv(next(session.glob("*measurements.csv")))
    labels = tifffile.imread(next(session.glob("*labels.ome.tif")))
    assert table["area_um2"].tolist() == pytest.approx(
        [float((labels == i).sum()) * 0.04 for i in table["label"]])
    assert "pixel_size=0.2, unit='µm')" in (session / "session.py").read_text()
    provenance = json.loads((session / "provenance.json").read_text())
    reading = provenance["artifacts"]["blobs"]["provenance"]["reading"]
    assert reading["pixel_size"]["sources"] == {"Y": "stated", "X": "stated"}


def test_bia_run_user_pixel_size_wins_over_the_file_and_says_the_file_disagreed(
        folder, tmp_path, stand_in, monkeypatch, capsys):
    monkeypatch.chdir(folder)
    assert main(["run", "measure calibrated.tif", "--pixel-size", "0.2",
                 "--outdir", str(tmp_path / "out"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "pixel size 0.2 µm (you said so; the file says 0.1 µm; yours is used" in out


def test_bia_run_axes_option_reads_a_movie_frame_by_frame(folder, tmp_path, stand_in,
                                                          monkeypatch, capsys):
    monkeypatch.chdir(folder)
    assert main(["run", "measure movie.tif", "--axes", "TYX", "--outdir",
                 str(tmp_path / "out"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "read movie: axes TYX (you said so; the file had no axis metadata and would " \
           "have been read as ZYX)" in out
    session = next((tmp_path / "out").glob("session-*"))
    table = pd.read_csv(next(session.glob("*measurements.csv")))
    assert table["frame"].tolist() == [0, 1, 2, 3, 4]  # one square per frame, not one volume


@pytest.mark.parametrize(("options", "message"), [
    (["--pixel-size", "-0.2"], "pixel size must be a positive number"),
    (["--pixel-size", "0.2", "--unit", "furlong"], "unknown length unit 'furlong'"),
    (["--axes", "TZYX"], "axes 'TZYX' have 4 letters but blobs.tif has 2 dimensions"),
])
def test_bia_run_bad_statement_is_a_clear_error(folder, tmp_path, stand_in, monkeypatch,
                                                capsys, options, message):
    monkeypatch.chdir(folder)
    code = main(["run", "measure blobs.tif", *options, "--outdir", str(tmp_path / "out"),
                 "--quiet"])
    assert code == 1
    assert message in capsys.readouterr().err


# -- batch ----------------------------------------------------------------------------------------


PIPELINE = {"steps": [
    {"tool": "threshold_labeling", "arguments": {"image": "input"}, "outputs": ["labels"]},
    {"tool": "measure_objects", "arguments": {"labels": "labels"}, "outputs": ["table"]},
]}


def test_batch_file_task_applies_the_statement(folder, tmp_path):
    record = process_file(str(folder / "movie.tif"), PIPELINE, str(tmp_path / "movie"),
                          stated={"axes": "TYX", "pixel_size": 0.5})
    assert record["status"] == "done", record["error"]
    assert record["reading"].startswith("axes TYX (you said so")
    table = pd.read_csv(record["table"])
    assert table["frame"].tolist() == [0, 1, 2, 3, 4] and "area_um2" in table
    bad = process_file(str(folder / "blobs.tif"), PIPELINE, str(tmp_path / "blobs"),
                       stated={"axes": "TYX"})
    assert bad["status"] == "failed" and "3 letters but blobs.tif has 2 dimensions" \
        in bad["error"]


def test_bia_batch_pixel_size_option_on_a_folder(folder, tmp_path, capsys):
    images = tmp_path / "plates"
    images.mkdir()
    for name in ("a.tif", "b.tif"):
        tifffile.imwrite(images / name, _discs())
    pipeline = tmp_path / "pipeline.json"
    pipeline.write_text(json.dumps(PIPELINE))
    out = tmp_path / "results"
    code = main(["batch", str(pipeline), str(images), "--out", str(out), "--workers", "1",
                 "--pixel-size", "0.25", "--unit", "µm", "--quiet"])
    assert code == 0, capsys.readouterr()
    results = pd.read_csv(out / "results.csv")
    assert sorted(results["file"].unique()) == ["a.tif", "b.tif"]
    assert results["area_um2"].tolist() == pytest.approx((results["area_px"] * 0.0625).tolist())
    records = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert all("pixel size 0.25 µm (you said so" in r["reading"] for r in records)
    # Another pixel size is another analysis: not mixed into the same results folder.
    code = main(["batch", str(pipeline), str(images), "--out", str(out), "--workers", "1",
                 "--pixel-size", "0.5", "--quiet"])
    assert code == 2 and "different analysis" in capsys.readouterr().err
    assert main(["batch", str(pipeline), str(images), "--out", str(out), "--axes", "TYX",
                 "--pixel-size", "0", "--quiet"]) == 2


def test_batch_replays_an_open_image_step_on_every_file(folder, tmp_path):
    pipeline = {"steps": [
        {"tool": "open_image", "arguments": {"path": "input", "axes": "TYX",
                                             "time_step": 2, "time_unit": "min"},
         "outputs": ["movie"]},
        {"tool": "threshold_labeling", "arguments": {"image": "movie"}, "outputs": ["lab"]},
        {"tool": "track_objects", "arguments": {"labels_movie": "lab"}, "outputs": ["tr"]},
    ]}
    record = process_file(str(folder / "movie.tif"), pipeline, str(tmp_path / "one"))
    assert record["status"] == "done", record["error"]
    tracks = pd.read_csv(record["table"])
    assert tracks["track_id"].nunique() == 1
    assert tracks["time_min"].tolist() == [0.0, 2.0, 4.0, 6.0, 8.0]


# -- the interface beside the upload -------------------------------------------------------------


def test_ui_fields_are_prefilled_from_the_file_and_applying_them_rereads(folder, tmp_path):
    ui = UISession(output_root=tmp_path / "out")
    _, message = ui.upload(folder / "calibrated.tif")
    assert "Read as: axes YX" in message and "0.1 µm (from the ImageJ metadata)" in message
    fields = ui.reading_fields()
    assert set(fields) == set(STATED_FIELDS)
    assert fields["axes"] == "YX" and fields["unit"] == "µm"
    assert fields["pixel_size"] == pytest.approx(0.1)
    _, message = ui.state_current(axes="YX", pixel_size=0.2, unit="µm", z_step=None,
                                  time_step=None, time_unit="", channel_names="")
    assert message.startswith("Now reading **calibrated**")
    assert "pixel size 0.2 µm (you said so; the file says 0.1 µm; yours is used)" in message
    assert ui.workspace.get("calibrated").meta.spacing == {"Y": 0.2, "X": 0.2}


def test_ui_movie_upload_then_time_lapse_fields(folder, tmp_path):
    ui = UISession(output_root=tmp_path / "out")
    _, message = ui.upload(folder / "movie.tif")
    assert "guessed: a 3D array without axis metadata" in message
    assert ui.reading_fields()["axes"] == "ZYX"
    ui.state_current(axes="TYX", time_step=5, time_unit="min")
    fields = ui.reading_fields()
    assert fields["axes"] == "TYX" and (fields["time_step"], fields["time_unit"]) == (5.0, "min")
    with pytest.raises(UploadError, match="time step must be a positive number"):
        ui.state_current(time_step=-5)
    with pytest.raises(UploadError, match="4 letters"):
        ui.state_current(axes="TZYX")
    assert ui.workspace.get("movie").meta.axes == "TYX"  # the refused value changed nothing


def test_ui_upload_with_the_fields_filled_in_first(folder, tmp_path):
    ui = UISession(output_root=tmp_path / "out")
    ui.upload(folder / "blobs.tif", stated={"pixel_size": 0.3, "unit": "um"})
    assert ui.workspace.get("blobs").meta.spacing == {"Y": 0.3, "X": 0.3}
    with pytest.raises(UploadError, match="unknown length unit"):
        ui.upload(folder / "blobs.tif", stated={"pixel_size": 0.3, "unit": "inch"})
    with pytest.raises(UploadError, match="upload an image first"):
        UISession(output_root=tmp_path / "o2").state_current(axes="TYX")


# -- MCP server and Jupyter ----------------------------------------------------------------------


def test_mcp_open_image_tool_states_and_later_calls_use_it(folder, tmp_path):
    from agent.mcp_server import BiaMCP

    ws = Workspace([folder], output_root=tmp_path / "out")
    state = BiaMCP(ws, REGISTRY, save=False)
    assert "open_image" in {t.name for t in state.mcp_tools()}
    text, structured, error = state.call("open_image", {"path": "blobs.tif",
                                                        "pixel_size": 0.2})
    assert not error and "read as: axes YX; pixel size 0.2 µm (you said so" in text
    text, _, error = state.call("threshold_labeling", {"image": "blobs.tif"})
    assert not error
    labels = structured["outputs"][0]
    text, structured, error = state.call("measure_objects", {"labels": "blobs_labels"})
    assert not error and "area_um2" in text
    text, _, error = state.call("open_image", {"path": "blobs.tif", "pixel_size": -1})
    assert error and "pixel size must be a positive number" in text
    assert labels == "blobs"


def test_serve_mcp_statement_options_become_the_session_default(folder, tmp_path):
    args = build_parser(["serve-mcp"]).parse_args(["serve-mcp", "--pixel-size", "0.4"])
    ws = Workspace([folder], output_root=tmp_path / "out")
    ws.state_default(**stated_from_args(args))
    assert ws.get("blobs.tif").meta.spacing == {"Y": 0.4, "X": 0.4}


def test_jupyter_config_states_what_the_arrays_and_files_are(folder, tmp_path, capsys):
    from agent.jupyter import NotebookSession, _parse_config
    from agent.session import Session

    options = _parse_config("axes=TYX pixel_size=0.5 time_step=5 time_unit=min")
    assert options == {"pixel_size": 0.5,
                       "stated": {"axes": "TYX", "time_step": 5.0, "time_unit": "min"}}
    with pytest.raises(StatedMetadataError, match="unknown time unit"):
        NotebookSession({}, stated={"time_unit": "fortnight"})
    user_ns = {"movie": _movie().astype(np.float32), "picture": _discs()}
    notebook = NotebookSession(user_ns, roots=[folder], outdir=tmp_path / "out", **options)
    workspace = Workspace([folder], output_root=tmp_path / "out")
    workspace.state_default(**notebook.stated)
    notebook._agent = SimpleNamespace(session=Session(workspace))  # no model needed here
    assert set(notebook.sync_variables()) == {"movie", "picture"}
    movie = workspace.get("movie").meta
    assert movie.axes == "TYX" and movie.spacing == {"Y": 0.5, "X": 0.5}
    assert movie.frame_interval() == (5.0, "min")
    # The 2D picture does not fit TYX: it stays as it was, and the notebook is told why.
    assert workspace.get("picture").meta.axes == "YX"
    assert "picture: not applying" in capsys.readouterr().err
    assert workspace.get("movie.tif").meta.axes == "TYX"  # files read with the same statement


def test_ui_sample_fields_and_restating_a_sample(tmp_path):
    from tools.datasets import list_datasets

    ui = UISession(output_root=tmp_path / "out")
    name = next(n for n in list_datasets() if "timelapse" not in n)
    ui.sample(name)
    fields = ui.reading_fields()
    assert fields["axes"] == ui.workspace.get(ui.current).meta.axes
    ui.state_current(pixel_size=0.25, unit="nm")
    meta = ui.workspace.get(ui.current).meta
    assert meta.unit == "nm" and meta.spacing["X"] == 0.25
    assert ui.reading_fields()["pixel_size"] == 0.25
