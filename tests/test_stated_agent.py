"""Stated metadata through the agent: a scripted model replies a plan that uses ``open_image``.

The model is the only scripted part; the planner checks and runs the plan through the real
registry and tools on generated files without metadata, and the outcome is the physical one
(tracks counted on a time-lapse, areas in µm² against the analytic truth).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import tifffile
from skimage.draw import disk

import tools
from agent.backends import ScriptedChatModel
from agent.planner import Agent
from agent.session import Session
from tools.workspace import Workspace

REGISTRY = tools.load_all()
RADIUS = 7


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    movie = np.zeros((6, 48, 64), np.uint16)
    for t in range(6):  # two squares crossing the field in opposite directions
        movie[t, 8:16, 4 + 3 * t:12 + 3 * t] = 1000
        movie[t, 30:38, 50 - 3 * t:58 - 3 * t] = 1000
    tifffile.imwrite(tmp_path / "movie.tif", movie)  # 3D, no axis metadata: read as ZYX
    blobs = np.zeros((96, 96), np.uint16)
    for centre in ((24, 24), (24, 70), (70, 40)):
        blobs[disk(centre, RADIUS, shape=blobs.shape)] = 1000
    tifffile.imwrite(tmp_path / "blobs.tif", blobs)  # no calibration
    return tmp_path


def _agent(folder: Path, plan: str, workspace: Workspace | None = None) -> Agent:
    if workspace is None:
        workspace = Workspace([folder], output_root=folder / "out")
    return Agent(ScriptedChatModel(replies=[plan]), session=Session(workspace),
                 registry=REGISTRY, examples=lambda request, k=3: [])


def test_time_lapse_stated_in_words_is_tracked(folder):
    plan = ('movie = open_image(path="movie.tif", axes="TYX", time_step=5, time_unit="min")\n'
            "labels = threshold_labeling(image=movie)\n"
            "tracks = track_objects(labels_movie=labels)\n"
            "answer(count(tracks))")
    agent = _agent(folder, plan)
    reply = agent.ask("movie.tif is a time-lapse with frames every 5 min. "
                      "Track the cells and tell me how many tracks there are.")
    assert reply.stopped is None, reply.text
    assert reply.values == [2]  # two cells, each tracked through the six frames
    workspace = agent.session.workspace
    movie = workspace.get("movie.tif")
    assert movie.meta.axes == "TYX" and movie.meta.frame_interval() == (5.0, "min")
    assert "axes TYX (you said so" in workspace.reading_note(movie.name)
    tracks = workspace.artifacts[reply.outputs[-1]].data
    assert tracks["time_min"].max() == pytest.approx(25.0)


def test_the_same_movie_without_a_statement_is_read_as_a_z_stack_and_says_so(folder):
    plan = ("labels = threshold_labeling(image=movie)\n"
            "answer(count(labels))")
    agent = _agent(folder, plan)
    reply = agent.ask("how many objects are in movie.tif?")
    assert reply.values == [2]  # two 3D objects: each square's path through the "z" planes
    note = agent.session.workspace.reading_note("movie")
    assert note.startswith("axes ZYX (guessed: a 3D array without axis metadata")


def test_pixel_size_stated_in_words_gives_square_micrometres(folder):
    plan = ('blobs = open_image(path="blobs.tif", pixel_size=0.2, unit="µm")\n'
            "labels = threshold_labeling(image=blobs)\n"
            "table = measure_objects(labels=labels)\n"
            'answer(mean(table, "area"))')
    agent = _agent(folder, plan)
    reply = agent.ask("The pixel size of blobs.tif is 0.2 µm. What is the mean area of the "
                      "blobs in square micrometers?")
    assert reply.stopped is None, reply.text
    truth = math.pi * (RADIUS * 0.2) ** 2
    assert reply.values[0] == pytest.approx(truth, rel=0.10)
    assert "µm²" in reply.text


def test_pixel_size_given_as_an_option_reaches_the_plan(folder):
    workspace = Workspace([folder], output_root=folder / "out")
    workspace.state_default(pixel_size=0.2, unit="µm")  # what --pixel-size 0.2 does
    plan = ("labels = threshold_labeling(image=blobs)\n"
            "table = measure_objects(labels=labels)\n"
            'answer(mean(table, "area"))')
    reply = _agent(folder, plan, workspace).ask("mean area of the blobs in blobs.tif")
    assert reply.values[0] == pytest.approx(math.pi * (RADIUS * 0.2) ** 2, rel=0.10)
    assert "µm²" in reply.text


def test_without_any_calibration_the_area_stays_in_pixels(folder):
    plan = ("labels = threshold_labeling(image=blobs)\n"
            "table = measure_objects(labels=labels)\n"
            'answer(mean(table, "area"))')
    reply = _agent(folder, plan).ask("mean area of the blobs in blobs.tif")
    assert reply.values[0] == pytest.approx(math.pi * RADIUS**2, rel=0.10)
    assert "µm" not in reply.text


def test_a_bad_statement_in_a_plan_is_reported_not_raised(folder):
    plan = ('movie = open_image(path="movie.tif", axes="TZYX")\n'
            "labels = threshold_labeling(image=movie)\n"
            "answer(count(labels))")
    agent = Agent(ScriptedChatModel(replies=[plan, plan]),
                  session=Session(Workspace([folder], output_root=folder / "out")),
                  registry=REGISTRY, examples=lambda request, k=3: [])
    reply = agent.ask("movie.tif is a 4D movie; count the cells")
    assert reply.stopped == "errors"
    assert "axes 'TZYX' have 4 letters but movie.tif has 3 dimensions" in reply.text


# -- what the request says is read into the binding, the plan needs no open_image -------------


def _capturing(folder: Path, plan: str) -> tuple[Agent, list[str]]:
    prompts: list[str] = []

    def reply(system: str, user: str) -> str:
        prompts.append(user)
        return plan

    agent = Agent(ScriptedChatModel(replies=[reply, reply]),
                  session=Session(Workspace([folder], output_root=folder / "out")),
                  registry=REGISTRY, examples=lambda request, k=3: [])
    return agent, prompts


def test_pixel_size_said_in_the_request_calibrates_the_bound_file(folder):
    plan = ("labels = threshold_labeling(image=blobs)\n"
            "table = measure_objects(labels=labels)\n"
            'answer(mean(table, "area_um2"))')
    agent, prompts = _capturing(folder, plan)
    reply = agent.ask("blobs.tif: the pixels are 0.2 µm wide. Mean blob area in µm²?")
    assert reply.stopped is None, reply.text
    assert reply.values[0] == pytest.approx(math.pi * (RADIUS * 0.2) ** 2, rel=0.10)
    assert "pixel size 0.2x0.2 µm" in prompts[0]
    assert "open_image(" not in prompts[0].split("\n\n")[0]  # not offered: already read so
    assert "pixel_size=0.2" in agent.session.script()  # the exported script reads it the same


def test_a_movie_said_in_words_is_bound_with_a_time_axis(folder):
    plan = ("labels = threshold_labeling(image=movie)\n"
            "tracks = track_objects(labels_movie=labels)\n"
            "answer(count(tracks))")
    agent, prompts = _capturing(folder, plan)
    reply = agent.ask("movie.tif: frames over time, not a z-stack. How many tracks?")
    assert reply.stopped is None, reply.text
    assert reply.values == [2]
    assert "axes TYX" in prompts[0]
    assert agent.session.workspace.get("movie.tif").meta.axes == "TYX"


def test_a_follow_up_that_states_the_pixel_size_recalibrates_the_sessions_image(folder):
    first = ("labels = threshold_labeling(image=blobs)\n"
             "table = measure_objects(labels=labels)\n"
             'answer(mean(table, "area"))')
    agent, _ = _capturing(folder, first)
    assert agent.ask("mean area of the blobs in blobs.tif").values[0] == pytest.approx(
        math.pi * RADIUS**2, rel=0.10)
    agent.model = ScriptedChatModel(replies=[first.replace("image=blobs", "image=blobs")])
    reply = agent.ask("the pixel size is actually 0.5 µm; redo the mean area in µm²")
    assert reply.stopped is None, reply.text
    assert reply.values[0] == pytest.approx(math.pi * (RADIUS * 0.5) ** 2, rel=0.10)
    assert "µm²" in reply.text


def test_a_plan_that_only_shows_the_input_back_is_refused(folder):
    agent, _ = _capturing(folder, "answer(show(blobs))")
    reply = agent.ask("blobs.tif: average blob intensity?")
    assert reply.stopped == "errors"
    assert "only shows the request's own file back" in reply.text


def test_a_shown_table_is_answered_with_its_mean_size(folder):
    plan = ("labels = threshold_labeling(image=blobs)\n"
            "table = measure_objects(labels=labels)\n"
            "answer(show(table))")
    agent, _ = _capturing(folder, plan)
    reply = agent.ask("blobs.tif: the pixels are 0.2 µm. Measure the size of every blob.")
    assert reply.stopped is None, reply.text
    assert reply.text.startswith("3 blobs measured, mean area ")
    stated = float(reply.text.split("mean area ")[1].split(" ")[0])
    assert stated == pytest.approx(math.pi * (RADIUS * 0.2) ** 2, rel=0.10)
    assert "µm²" in reply.text
