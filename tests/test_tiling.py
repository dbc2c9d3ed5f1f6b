"""Tiled filters and segmentation agree with the untiled tools on images that fit in memory."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.draw import disk
from stardist.matching import matching

import tools
from tools.denoise import denoise_nlm
from tools.errors import InputError, ToolCallError
from tools.segment import voronoi_otsu_labeling
from tools.synthetic import nuclei_2d
from tools.tiling import (
    filter_depth,
    filter_tiled,
    label_tiled,
    map_tiled,
    segment_tiled,
    tile_grid,
)
from tools.workspace import Workspace


@pytest.fixture(scope="module")
def nuclei():
    return nuclei_2d((768, 768), n_nuclei=260, seed=11)


def test_tile_grid_covers_every_pixel_once() -> None:
    count = np.zeros((70, 53, 9), dtype=int)
    for box in tile_grid(count.shape, (32, 20, 4)):
        count[box] += 1
    assert (count == 1).all()
    assert len(tile_grid((70, 53, 9), (32, 20, 4))) == 3 * 3 * 3


def test_objects_on_tile_borders_are_kept_once_and_whole() -> None:
    image = np.zeros((200, 200), dtype=np.float32)
    centres = [(64, 64), (64, 100), (127, 128), (10, 190), (190, 63)]
    for centre in centres:
        image[disk(centre, 9, shape=image.shape)] = 1.0
    truth, n = ndi.label(image > 0.5)
    stitched = label_tiled(lambda b: ndi.label(b > 0.5)[0], image, tile_size=64, overlap=24)
    assert stitched.max() == n == len(centres)
    scores = matching(truth, stitched, thresh=0.99)
    assert scores.tp == n  # every disc whole, none cut at a border


def test_too_small_an_overlap_splits_objects() -> None:
    # The method's stated limit: with margins narrower than an object, each tile sees only its
    # piece of it, owns that piece's centre, and the object comes out split.
    image = np.zeros((128, 128), dtype=np.float32)
    image[disk((64, 64), 20, shape=image.shape)] = 1.0
    stitched = label_tiled(lambda b: ndi.label(b > 0.5)[0], image, tile_size=64, overlap=4)
    assert stitched.max() == 4
    enough = label_tiled(lambda b: ndi.label(b > 0.5)[0], image, tile_size=64, overlap=44)
    assert enough.max() == 1 and (enough > 0).sum() == (image > 0).sum()


def test_segment_tiled_matches_untiled_voronoi_otsu(nuclei) -> None:
    params = {"spot_sigma": 3.0, "outline_sigma": 1.0}
    whole = voronoi_otsu_labeling(nuclei.image, **params)
    tiled = segment_tiled(nuclei.image, tile_size=256, overlap=48, **params)
    scores = matching(whole, tiled, thresh=0.5)
    assert scores.f1 >= 0.98
    # Within 2 %: the noise floor of the threshold comes from the central block when tiled.
    assert abs(int(tiled.max()) - int(whole.max())) <= 0.02 * whole.max()
    assert tiled.dtype == np.int32 and tiled.shape == nuclei.image.shape
    # and it is a real segmentation, not two equal failures
    assert matching(nuclei.labels, tiled, thresh=0.5).f1 > 0.7


def test_map_tiled_gaussian_equals_whole_image_2d_and_3d() -> None:
    rng = np.random.default_rng(0)
    for shape, tile in (((300, 270), 64), ((20, 90, 70), (8, 32, 32))):
        image = rng.random(shape, dtype=np.float32)
        whole = ndi.gaussian_filter(image, sigma=2.5, mode="nearest")
        tiled = map_tiled(ndi.gaussian_filter, image, depth=11, tile_size=tile, sigma=2.5,
                          mode="nearest")
        assert np.abs(tiled - whole).max() < 1e-6


def test_map_tiled_with_too_small_a_depth_differs() -> None:
    image = np.random.default_rng(1).random((200, 200), dtype=np.float32)
    whole = ndi.gaussian_filter(image, sigma=4.0, mode="nearest")
    shallow = map_tiled(ndi.gaussian_filter, image, depth=2, tile_size=50, sigma=4.0,
                        mode="nearest")
    assert np.abs(shallow - whole).max() > 1e-3


def test_filter_tiled_denoise_nlm_equals_untiled(nuclei) -> None:
    crop = nuclei.image[:256, :256]
    whole = denoise_nlm(crop, noise_sigma=0.05)
    tiled = filter_tiled(crop, "denoise_nlm", {"noise_sigma": 0.05}, tile_size=64)
    assert np.abs(tiled - whole).max() < 1e-5


def test_filter_depth_follows_sigma_radius_and_pixel_size() -> None:
    from tools.types import PixelSize

    assert filter_depth("gaussian_blur", {"sigma": 2.0}, 2) == (10, 10)
    assert filter_depth("median_filter", {"radius": 3}, 2) == (4, 4)
    # Z steps 4x coarser than X: the Z reach in pixels is 4x smaller
    assert filter_depth("gaussian_blur", {"sigma": 2.0}, 3, PixelSize((2.0, 0.5, 0.5), "µm")) \
        == (4, 10, 10)
    with pytest.raises(InputError, match="cannot be tiled"):
        filter_depth("rolling_ball_background", {"radius": 50}, 2)


def test_filter_tiled_refuses_bad_arguments(nuclei) -> None:
    tool_ = tools.get_tool("filter_tiled")
    with pytest.raises(ToolCallError, match="filter_name"):
        tool_.validate({"image": "x", "filter_name": "frangi"})
    with pytest.raises(ToolCallError, match="unknown parameter 'sigmaa'"):
        filter_tiled(nuclei.image[:64, :64], "denoise_nlm", {"sigmaa": 1.0})


def test_budget_refuses_untiled_tools_but_not_tiled_ones(tmp_path, nuclei) -> None:
    registry = tools.load_all()
    ws = Workspace([tmp_path], output_root=tmp_path / "out", max_pixels=100_000)
    ws.add("big", nuclei.image[:512, :512], kind="image")
    with pytest.raises(InputError, match="segment_tiled"):
        registry.run(ws, "voronoi_otsu_labeling", {"image": "big"})
    result = registry.run(ws, "segment_tiled", {"image": "big", "tile_size": 128})
    labels = ws.get(result.outputs[0]).data
    assert labels.shape == (512, 512) and labels.max() > 20


@pytest.mark.skipif(importlib.util.find_spec("tools.stardist_segment") is None,
                    reason="tools.stardist_segment lands from the stardist branch")
def test_segment_tiled_stardist_matches_untiled(nuclei) -> None:
    from tools.stardist_segment import stardist_segment

    crop = nuclei.image[:512, :512]
    whole = stardist_segment(crop)
    tiled = segment_tiled(crop, method="stardist", tile_size=256, overlap=64)
    assert matching(whole, tiled, thresh=0.5).f1 >= 0.95


def test_segment_tiled_stardist_missing_is_a_clear_error(nuclei, monkeypatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "tools.stardist_segment", None)  # import fails
    with pytest.raises(InputError, match="StarDist is not available"):
        segment_tiled(nuclei.image[:128, :128], method="stardist")
