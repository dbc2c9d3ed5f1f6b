"""Tracking: linking against synthetic ground truth, CTC export, track features, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tools.errors import InputError, ToolCallError
from tools.registry import get_tool
from tools.synthetic import read_ctc, timelapse
from tools.track import (
    mean_squared_displacement,
    relabel_by_track,
    score_tracking,
    track_features,
    track_objects,
    tracks_to_ctc,
    write_ctc_result,
)
from tools.types import ImageMeta, PixelSize
from tools.workspace import Workspace


def disk_movie(centres: list[list[tuple[float, float]]], shape=(48, 48), radius=3.0) -> np.ndarray:
    """A label movie with one disk per given centre; labels 1.. in list order per frame."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    movie = np.zeros((len(centres), *shape), np.int32)
    for t, frame in enumerate(centres):
        for k, (y, x) in enumerate(frame, start=1):
            movie[t][(yy - y) ** 2 + (xx - x) ** 2 <= radius**2] = k
    return movie


@pytest.fixture(scope="module")
def moderate():
    return timelapse(15, shape=(160, 160), n_cells=20, speed=3.0, division_rate=0.03, seed=3)


def test_lap_reaches_tra_099_on_moderate_density(moderate):
    tracks = track_objects(moderate.labels, max_distance=15.0)
    score = score_tracking(moderate.labels, tracks, moderate.labels, moderate.tracks)
    assert score["TRA"] >= 0.99
    assert score["gt_divisions"] > 0
    assert score["tp_divisions"] >= 0.7 * score["gt_divisions"]
    assert score["fn_nodes"] == 0 and score["fp_nodes"] == 0


def test_greedy_baseline_is_scored_and_not_better_on_fast_cells():
    movie = timelapse(15, shape=(160, 160), n_cells=25, speed=6.0, division_rate=0.0, seed=1)
    scores = {
        m: score_tracking(
            movie.labels, track_objects(movie.labels, max_distance=20.0, method=m),
            movie.labels, movie.tracks,
        )
        for m in ("greedy", "lap")
    }
    assert scores["lap"]["TRA"] >= scores["greedy"]["TRA"]
    assert scores["lap"]["fp_edges"] <= scores["greedy"]["fp_edges"]


def test_division_gives_two_daughters_with_parent():
    movie = disk_movie([[(20, 20)]] * 3 + [[(20, 15), (20, 26)]] * 2)
    for method in ("lap", "greedy"):
        tracks = track_objects(movie, max_distance=10.0, method=method)
        per_track = tracks.groupby("track_id").agg(
            first=("frame", "min"), last=("frame", "max"), parent=("parent_track_id", "first"),
            tree=("tree_id", "first"))
        assert len(per_track) == 3, method
        mother = per_track.index[per_track["parent"] == 0][0]
        daughters = per_track[per_track["parent"] == mother]
        assert len(daughters) == 2 and set(daughters["first"]) == {3}
        assert per_track.loc[mother, "last"] == 2
        assert set(per_track["tree"]) == {mother}
    no_div = track_objects(movie, max_distance=10.0, allow_divisions=False)
    assert (no_div["parent_track_id"] == 0).all()
    assert no_div["track_id"].nunique() == 2


def test_gap_closing_bridges_a_missed_frame_and_ctc_cuts_it(tmp_path):
    centres = [[(20, 10 + 3 * t)] for t in range(6)]
    centres[2] = []  # missed detection: an empty frame
    movie = disk_movie(centres)
    closed = track_objects(movie, max_distance=8.0, gap_closing_frames=1)
    assert closed["track_id"].nunique() == 1
    assert list(closed["frame"]) == [0, 1, 3, 4, 5]
    assert track_objects(movie, max_distance=8.0, gap_closing_frames=0)["track_id"].nunique() == 2
    greedy = track_objects(movie, max_distance=8.0, gap_closing_frames=1, method="greedy")
    assert greedy["track_id"].nunique() == 1

    ctc_movie, ctc = tracks_to_ctc(movie, closed)
    assert ctc.values.tolist() == [[1, 0, 1, 0], [2, 3, 5, 1]]
    assert set(np.unique(ctc_movie[4])) == {0, 2}
    write_ctc_result(tmp_path / "res", movie, closed)
    back = read_ctc(tmp_path / "res")
    assert back.kind == "RES"
    pd.testing.assert_frame_equal(back.tracks, ctc)
    np.testing.assert_array_equal(back.labels, ctc_movie)


def test_anisotropic_z_is_scaled_by_the_voxel_size():
    movie = np.zeros((2, 12, 16, 16), np.int32)
    movie[0, 2:4, 6:9, 6:9] = 1
    movie[1, 5:7, 6:9, 6:9] = 1  # 3 slices deeper
    pixel = track_objects(movie, max_distance=5.0)
    assert pixel["track_id"].nunique() == 1  # 3 px apart
    physical = track_objects(movie, max_distance=5.0, pixel_size=PixelSize((2.0, 0.5, 0.5), "µm"))
    # dz = 4 dx: 3 slices are 12 X pixels, beyond max_distance.
    assert physical["track_id"].nunique() == 2
    assert {"centroid_z_px", "centroid_z_um"} <= set(physical.columns)
    assert physical["centroid_z_um"].tolist() == pytest.approx([5.0, 11.0])


def test_relabel_by_track_keeps_identity(moderate):
    tracks = track_objects(moderate.labels, max_distance=15.0)
    relabelled = relabel_by_track(moderate.labels, tracks)
    assert relabelled.shape == moderate.labels.shape
    assert set(np.unique(relabelled)) - {0} == set(tracks["track_id"])
    assert ((relabelled > 0) == (moderate.labels > 0)).all()


def test_track_features_of_a_straight_line_in_physical_units():
    movie = disk_movie([[(20, 8 + 2 * t)] for t in range(5)], shape=(40, 40))
    tracks = track_objects(movie, max_distance=5.0, pixel_size=PixelSize((0.5, 0.5), "µm"))
    features = track_features(tracks, frame_interval=10.0, time_unit="s")
    row = features.iloc[0]
    assert len(features) == 1
    assert row["displacement_um"] == pytest.approx(4.0)
    assert row["path_length_um"] == pytest.approx(4.0)
    assert row["mean_speed_um_per_s"] == pytest.approx(0.1)
    assert row["straightness"] == pytest.approx(1.0)
    assert row["msd_lag1_um2"] == pytest.approx(1.0)
    msd = mean_squared_displacement(tracks, max_lag=4, frame_interval=10.0)
    assert msd["msd_um2"].tolist() == pytest.approx([1.0, 4.0, 9.0, 16.0])
    assert msd["lag_s"].tolist() == [10.0, 20.0, 30.0, 40.0]


def test_straightness_below_one_for_a_zigzag_and_pixels_without_calibration():
    movie = disk_movie([[(20, 10)], [(24, 14)], [(20, 18)]], shape=(40, 40))
    features = track_features(track_objects(movie, max_distance=8.0))
    assert features.loc[0, "straightness"] == pytest.approx(8 / (2 * np.hypot(4, 4)))
    assert "mean_speed_px_per_frame" in features.columns


def test_one_frame_gaps_in_labels_and_empty_frames_are_documented_behaviour():
    single = np.zeros((1, 20, 20), np.int32)
    single[0, 2:5, 2:5] = 3
    single[0, 10:14, 10:14] = 7  # labels with gaps (3, 7) are fine
    tracks = track_objects(single)
    assert len(tracks) == 2 and tracks["track_id"].nunique() == 2
    assert sorted(tracks["label"]) == [3, 7]
    assert np.isnan(track_features(tracks)["straightness"]).all()


@pytest.mark.parametrize(
    ("movie", "message"),
    [
        (np.zeros((3, 10, 10), np.float32) + 1, "integer label movie"),
        (np.zeros((10, 10), np.int32), "TYX or TZYX"),
        (np.zeros((3, 10, 10), np.int32), "no objects"),
        ([np.ones((10, 10), np.int32), np.ones((12, 10), np.int32)], "frame 1 has shape"),
        (np.full((2, 5, 5), -1, np.int32), "negative"),
    ],
)
def test_bad_movies_are_refused_clearly(movie, message):
    with pytest.raises(InputError, match=message):
        track_objects(movie)


def test_scoring_refuses_movies_of_different_shapes(moderate):
    tracks = track_objects(moderate.labels[:5])
    with pytest.raises(InputError, match="same movie"):
        score_tracking(moderate.labels[:5], tracks, moderate.labels, moderate.tracks)


def test_track_objects_runs_through_the_registry(tmp_path):
    ws = Workspace([tmp_path], output_root=tmp_path / "out")
    movie = disk_movie([[(20, 10 + 2 * t)] for t in range(4)], shape=(40, 40))
    meta = ImageMeta(axes="TYX", spacing={"Y": 0.5, "X": 0.5}, unit="µm")
    ws.add("cells", movie, kind="labels", meta=meta)
    tool_ = get_tool(track_objects)
    result = tool_.run(ws, {"labels_movie": "cells", "max_distance": 5})
    table = ws.get(result.outputs[0]).data
    assert table["track_id"].nunique() == 1 and "centroid_x_um" in table.columns
    with pytest.raises(ToolCallError, match="method"):
        tool_.validate({"labels_movie": "cells", "method": "hungarian"})


def test_every_tool_of_issue_4_is_registered_with_a_schema():
    import tools

    registry = tools.load_all()
    names = ["track_objects", "track_features", "mean_squared_displacement", "score_tracking",
             "measure_surfaces", "export_surface_meshes", "average_precision",
             "segmentation_quality", "bland_altman", "correlate"]
    for name in names:
        schema = registry.get(name).openai_schema()["function"]
        assert schema["parameters"]["properties"], name
        assert "pixel_size" not in schema["parameters"]["properties"], name
