"""Spot detection against synthetic blob centres, sub-pixel accuracy, matching, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from tools.detect import detect_spots, match_points
from tools.errors import InputError
from tools.registry import get_tool
from tools.synthetic import blobs
from tools.types import ImageMeta
from tools.workspace import Workspace


@pytest.fixture(scope="module")
def sample():
    return blobs(50, shape=(256, 256), radius=(3.0, 7.0), seed=7)


@pytest.mark.parametrize("method", ["log", "dog", "local_max"])
def test_methods_find_the_blob_centres(sample, method):
    spots = detect_spots(sample.image, method=method, sigma=2.0, max_sigma=5.0)
    score = match_points(spots[["y", "x"]].to_numpy(), sample.centers, max_distance=3.0)
    assert score["f1"] >= 0.95, score
    assert list(spots.columns[:3]) == ["spot", "y", "x"]
    assert spots["response"].is_monotonic_decreasing


def test_subpixel_refinement_lowers_the_position_error(sample):
    errors = {}
    for subpixel in (False, True):
        spots = detect_spots(sample.image, method="dog", sigma=3.0, subpixel=subpixel)
        score = match_points(spots[["y", "x"]].to_numpy(), sample.centers, max_distance=3.0)
        assert score["f1"] >= 0.95
        errors[subpixel] = score["mean_distance"]
    assert errors[True] < 0.75 * errors[False]
    assert errors[True] < 0.4


def test_spot_size_follows_blob_radius():
    yy, xx = np.mgrid[:96, :96]
    image = np.zeros((96, 96), np.float32)
    for (y, x), s in (((30.2, 30.7), 2.0), ((60.5, 64.1), 4.0)):
        image += np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / (2 * s**2))
    spots = detect_spots(image, sigma=1.5, max_sigma=6.0).sort_values("y")
    assert len(spots) == 2
    assert spots["sigma"].to_numpy() == pytest.approx([2.0, 4.0], rel=0.15)
    assert spots[["y", "x"]].to_numpy().ravel() == pytest.approx([30.2, 30.7, 60.5, 64.1], abs=0.1)


def test_no_spots_in_pure_noise():
    noise = np.random.default_rng(3).normal(0.1, 0.02, (128, 128)).astype(np.float32)
    assert len(detect_spots(noise, sigma=2.0)) <= 2


def test_3d_spots_with_pixel_size(tmp_path):
    zz, yy, xx = np.mgrid[:20, :48, :48]
    image = np.exp(-(((zz - 10) * 2.0) ** 2 + ((yy - 20) * 0.5) ** 2 + ((xx - 30) * 0.5) ** 2)
                   / (2 * 1.5**2)).astype(np.float32)
    workspace = Workspace([tmp_path], output_root=tmp_path / "out")
    meta = ImageMeta("ZYX", {"Z": 2.0, "Y": 0.5, "X": 0.5}, "µm")
    workspace.add("stack", image, kind="image", meta=meta)
    result = get_tool(detect_spots).run(workspace, {"image": "stack", "sigma": 3.0})
    spots = workspace.get(result.outputs[0]).data
    assert result.outputs == ["stack_spots"]
    assert len(spots) == 1
    assert spots.loc[0, ["z", "y", "x"]].to_list() == pytest.approx([10, 20, 30], abs=0.1)
    assert spots.loc[0, "x_um"] == pytest.approx(15.0, abs=0.05)


def test_match_points_is_one_to_one():
    true = np.array([[0.0, 0.0], [10.0, 0.0]])
    predicted = np.array([[0.5, 0.0], [1.0, 0.0], [30.0, 30.0]])
    score = match_points(predicted, true, max_distance=2.0)
    assert (score["tp"], score["fp"], score["fn"]) == (1, 2, 1)
    assert score["f1"] == pytest.approx(2 / 5)
    assert score["mean_distance"] == pytest.approx(0.5)
    assert match_points(np.zeros((0, 2)), true, 2.0)["recall"] == 0.0


def test_bad_input_is_refused(sample):
    with pytest.raises(InputError, match="sigma"):
        detect_spots(sample.image, sigma=0)
    with pytest.raises(InputError, match="max_sigma"):
        detect_spots(sample.image, sigma=3.0, max_sigma=2.0)
    with pytest.raises(InputError, match="2D or 3D"):
        detect_spots(np.zeros((2, 2, 8, 8), np.float32))
    with pytest.raises(InputError, match="max_distance"):
        match_points(np.zeros((1, 2)), np.zeros((1, 2)), 0)
