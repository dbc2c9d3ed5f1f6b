"""Segmentation tools against synthetic ground truth, both backends, and bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from stardist.matching import matching

from tools.errors import InputError
from tools.registry import get_tool
from tools.segment import (
    choose_backend,
    fill_holes,
    relabel_sequential,
    remove_border_objects,
    remove_small_objects,
    seeded_watershed,
    threshold_labeling,
    voronoi_otsu_labeling,
)
from tools.synthetic import blobs, nuclei_2d, nuclei_3d
from tools.types import ImageMeta, PixelSize
from tools.workspace import Workspace


@pytest.fixture(scope="module")
def nuclei():
    return nuclei_2d((256, 256), n_nuclei=40, seed=11)


def f1(truth: np.ndarray, predicted: np.ndarray) -> float:
    return float(matching(truth, predicted, thresh=0.5).f1)


def test_voronoi_otsu_finds_synthetic_nuclei(nuclei):
    labels = voronoi_otsu_labeling(nuclei.image, spot_sigma=3.0, backend="skimage")
    assert labels.shape == nuclei.image.shape and labels.dtype == np.int32
    assert np.array_equal(np.unique(labels), np.arange(labels.max() + 1))  # consecutive
    assert f1(nuclei.labels, labels) >= 0.6


def test_voronoi_otsu_splits_touching_disks():
    yy, xx = np.mgrid[:80, :120]
    image = np.zeros((80, 120), np.float32)
    for cx in (40, 64):  # two disks of radius 14 overlapping by 4 pixels
        image += np.exp(-((yy - 40) ** 2 + (xx - cx) ** 2) / (2 * 9.0**2))
    labels = voronoi_otsu_labeling(image, spot_sigma=2.0, outline_sigma=1.0)
    assert labels.max() == 2
    # The split runs between the two centres.
    assert labels[40, 40] != labels[40, 64] and labels[40, 40] > 0 and labels[40, 64] > 0


def test_region_by_region_flooding_equals_one_watershed(nuclei):
    """Flooding only regions with several markers equals one watershed of the whole mask."""
    from scipy import ndimage as ndi
    from skimage.segmentation import watershed

    from tools.segment import _flood_markers, _local_maxima, smooth, threshold_value

    blurred = smooth(nuclei.image, (2.0, 2.0))
    mask = blurred > threshold_value(blurred, "otsu")
    markers = _local_maxima(blurred, mask)
    fast = _flood_markers(markers, mask)
    slow = watershed(ndi.distance_transform_edt(markers == 0), markers, mask=mask)
    orphans, _ = ndi.label(mask & (slow == 0))
    slow = np.where(orphans > 0, orphans + slow.max(), slow)
    assert np.array_equal(fast > 0, slow > 0)
    assert fast.max() == slow.max()
    # Pixels exactly halfway between two markers may go either way.
    assert (fast != slow).mean() < 0.001


@pytest.mark.parametrize("method", ["otsu", "li", "triangle", "yen"])
def test_threshold_methods_find_separated_blobs(method):
    data = blobs(20, shape=(200, 200), radius=(5, 9), noise=0.03, seed=2)
    labels = threshold_labeling(data.image, method=method, sigma=1.0)
    # Blobs 3 pixels apart: one component each (a low threshold may join one pair).
    assert abs(int(labels.max()) - 20) <= 1, method
    assert f1(data.labels, labels) >= 0.9


def test_manual_threshold_and_dark_objects():
    image = np.full((40, 40), 100.0, np.float32)
    image[10:20, 10:20] = 10.0
    bright = threshold_labeling(image, method="manual", threshold=50.0, sigma=0)
    dark = threshold_labeling(image, method="manual", threshold=50.0, sigma=0, dark_objects=True)
    assert bright.max() == 1 and (bright > 0).sum() == 40 * 40 - 100
    assert dark.max() == 1 and (dark > 0).sum() == 100


@pytest.mark.parametrize("seeds", ["distance", "spots"])
def test_seeded_watershed_on_synthetic_nuclei(nuclei, seeds):
    labels = seeded_watershed(nuclei.image, seeds=seeds, min_distance=4, spot_sigma=4.0)
    assert f1(nuclei.labels, labels) >= 0.6


def test_seeded_watershed_from_a_spots_table():
    yy, xx = np.mgrid[:60, :100]
    image = ((yy - 30) ** 2 + (xx - 38) ** 2 < 15**2) | ((yy - 30) ** 2 + (xx - 62) ** 2 < 15**2)
    image = image.astype(np.float32)
    spots = pd.DataFrame({"y": [30.0, 30.0], "x": [38.0, 62.0]})
    labels = seeded_watershed(image, seeds="spots", spots=spots, sigma=0)
    assert labels.max() == 2 and labels[30, 38] != labels[30, 62]
    with pytest.raises(InputError, match="columns"):
        seeded_watershed(image, seeds="spots", spots=pd.DataFrame({"row": [1.0]}), sigma=0)
    with pytest.raises(InputError, match="seeds to 'spots'"):
        seeded_watershed(image, spots=spots)


def test_3d_anisotropic_segmentation():
    data = nuclei_3d((16, 64, 64), n_nuclei=8, seed=4)
    px = data.meta.pixel_size()
    assert px.spacing == (2.0, 0.5, 0.5)
    labels = voronoi_otsu_labeling(data.image, spot_sigma=3.0, pixel_size=px)
    assert labels.shape == data.image.shape
    assert f1(data.labels, labels) >= 0.6
    watershed = seeded_watershed(data.image, min_distance=4, pixel_size=px)
    assert f1(data.labels, watershed) >= 0.5


def test_remove_small_and_border_objects_and_relabel():
    labels = np.zeros((30, 30), np.int32)
    labels[0:5, 0:5] = 3  # touches the border
    labels[10:12, 10:12] = 7  # 4 pixels
    labels[15:25, 15:25] = 9  # 100 pixels
    small = remove_small_objects(labels, min_size=5)
    assert sorted(np.unique(small)) == [0, 1, 2]
    assert (small == 2).sum() == 100
    big = remove_small_objects(labels, min_size=1, max_size=50)
    assert (big > 0).sum() == 25 + 4
    inner = remove_border_objects(labels)
    assert inner.max() == 2 and inner[0, 0] == 0 and (inner > 0).sum() == 104
    assert np.array_equal(np.unique(relabel_sequential(labels)), [0, 1, 2, 3])


def test_fill_holes_only_fills_single_owner_holes():
    labels = np.zeros((20, 30), np.int32)
    labels[2:9, 2:9] = 1
    labels[5, 5] = 0  # hole in object 1
    labels[2:9, 12:16] = 2
    labels[2:9, 17:21] = 3
    labels[2, 16] = labels[8, 16] = 2  # a gap at column 16 enclosed by 2 and 3 together
    filled = fill_holes(labels)
    assert filled[5, 5] == 1
    assert (filled[3:8, 16] == 0).all()  # shared gap left alone
    assert ((filled != labels).sum()) == 1


def test_backend_auto_is_skimage_without_gpu():
    assert choose_backend("auto") in ("skimage", "clesperanto")
    assert choose_backend("skimage") == "skimage"
    with pytest.raises(InputError, match="backend"):
        choose_backend("cuda")


@pytest.mark.slow
def test_clesperanto_backend_matches_skimage():
    """Both backends agree on a small image (clEsperanto on PoCL: the first call compiles).

    Tolerance: the same object count within 1, every object matched at IoU 0.5 and a mean
    matched IoU of at least 0.9 (the two blur and threshold with different float rounding, and
    clEsperanto's flooding grows octagons rather than geodesic discs).
    """
    data = nuclei_2d((128, 128), n_nuclei=12, seed=3)
    a = voronoi_otsu_labeling(data.image, spot_sigma=3.0, backend="skimage")
    try:
        b = voronoi_otsu_labeling(data.image, spot_sigma=3.0, backend="clesperanto")
    except InputError as exc:
        # A machine whose OpenCL cannot run the kernels gets an error that says so and what
        # to use instead; there is nothing to compare then.
        assert "OpenCL" in str(exc) and "backend='skimage'" in str(exc), str(exc)
        pytest.skip(f"clEsperanto cannot run on this machine: {exc}")
    assert abs(int(a.max()) - int(b.max())) <= 1
    score = matching(a, b, thresh=0.5)
    assert score.f1 >= 0.9
    assert score.mean_matched_score >= 0.9


def test_bad_input_is_refused():
    image = np.random.default_rng(0).random((32, 32)).astype(np.float32)
    with pytest.raises(InputError, match="2D or 3D"):
        voronoi_otsu_labeling(np.zeros((2, 3, 32, 32), np.float32))
    with pytest.raises(InputError, match="spot_sigma"):
        voronoi_otsu_labeling(image, spot_sigma=-1)
    with pytest.raises(InputError, match="constant"):
        voronoi_otsu_labeling(np.ones((32, 32), np.float32))
    with pytest.raises(InputError, match="manual"):
        threshold_labeling(image, method="manual")
    with pytest.raises(InputError, match="method 'manual'"):
        threshold_labeling(image, method="otsu", threshold=0.5)
    with pytest.raises(InputError, match="NaN"):
        threshold_labeling(np.full((8, 8), np.nan, np.float32))
    with pytest.raises(InputError, match="integer"):
        remove_small_objects(image, min_size=3)
    with pytest.raises(InputError, match="max_size"):
        remove_small_objects(np.ones((4, 4), np.int32), min_size=5, max_size=2)


def test_registry_refuses_images_above_the_pixel_budget(tmp_path):
    workspace = Workspace([tmp_path], output_root=tmp_path / "out", max_pixels=1000)
    workspace.add("big", np.zeros((64, 64), np.float32), kind="image")
    with pytest.raises(InputError, match="tiles"):
        get_tool(voronoi_otsu_labeling).run(workspace, {"image": "big"})


def test_registry_runs_segmentation_with_pixel_size(tmp_path, nuclei):
    workspace = Workspace([tmp_path], output_root=tmp_path / "out")
    workspace.add("nuclei", nuclei.image, kind="image", meta=nuclei.meta)
    result = get_tool(voronoi_otsu_labeling).run(workspace, {"image": "nuclei", "spot_sigma": 3})
    assert result.outputs == ["nuclei_labels"]
    assert isinstance(workspace.get("nuclei_labels").meta, ImageMeta)
    assert result.arguments["pixel_size"] == {"spacing": [0.5, 0.5], "unit": "µm"}
    assert PixelSize((0.5, 0.5), "µm") == nuclei.meta.pixel_size()
    schema = get_tool(voronoi_otsu_labeling).openai_schema()["function"]["parameters"]
    assert schema["properties"]["backend"]["enum"] == ["auto", "skimage", "clesperanto"]
    assert "pixel_size" not in schema["properties"]


def test_group_otsu_maximises_each_groups_between_class_variance():
    from tools.segment import _group_otsu

    rng = np.random.default_rng(11)
    groups, values, centres = [], [], []
    for g, (n_low, n_high) in enumerate(((220, 130), (3, 2), (900, 40), (1, 1), (17, 300)),
                                        start=1):
        low = 0.2 * g + rng.normal(0, 0.01, n_low)
        high = 0.2 * g + 0.1 + rng.normal(0, 0.01, n_high)
        values.append(np.concatenate([low, high]))
        groups.append(np.full(n_low + n_high, g))
        centres.append(0.2 * g + 0.05)
    order = rng.permutation(sum(v.size for v in values))  # groups interleaved
    flat, ids = np.concatenate(values)[order], np.concatenate(groups)[order]
    wanted = np.array([False, True, True, True, True, False])
    levels = _group_otsu(flat, ids, 6, wanted)

    def between(v: np.ndarray, t: float) -> float:
        low, high = v[v <= t], v[v > t]
        return low.size * high.size * (low.mean() - high.mean()) ** 2

    assert np.isnan(levels[0]) and np.isnan(levels[5])  # no values; not wanted
    for g in (1, 2, 3, 4):
        v = values[g - 1]
        best = max(between(v, t) for t in np.sort(v)[:-1])
        assert between(v, levels[g]) == pytest.approx(best)
        assert abs(levels[g] - centres[g - 1]) < 0.04


def test_group_medians_match_numpy_per_group():
    from tools.segment import _group_medians

    rng = np.random.default_rng(4)
    ids = rng.integers(0, 7, 2000)
    ids[ids == 3] = 2  # an empty group
    values = rng.normal(size=2000).astype(np.float32)
    values[:300] = np.round(values[:300])  # ties
    medians = _group_medians(values, ids, 8)
    for g in range(8):
        expected = float(np.median(values[ids == g])) if (ids == g).any() else 0.0
        assert float(medians[g]) == expected


def test_triangle_level_from_a_shared_histogram_equals_scikit_image():
    from skimage import exposure, filters

    from tools.segment import _triangle_level

    rng = np.random.default_rng(0)
    for i in range(400):
        if i % 3 == 0:
            x = rng.normal(0, 1, 5000) ** 2
        elif i % 3 == 1:
            x = np.concatenate([rng.normal(0, 1, 4000), rng.normal(5, 0.5, rng.integers(10, 2000))])
        else:
            x = -rng.exponential(1, 3000)
        x = x.astype(np.float32)
        histogram = exposure.histogram(x, 256, source_range="image")
        assert _triangle_level(*histogram) == float(filters.threshold_triangle(x))


def test_pack_keeps_boxes_apart_and_inside():
    from tools.segment import _pack

    rng = np.random.default_rng(2)
    for ndim in (2, 3):
        shapes = rng.integers(1, 30, (60, ndim))
        shape, starts = _pack(shapes, 5)
        canvas = np.zeros(shape, dtype=int)
        for start, size in zip(starts, shapes, strict=True):
            # Each box grown by the gap overlaps no other box and stays on the canvas.
            grown = tuple(slice(a - 5, a + n + 5) for a, n in zip(start, size, strict=True))
            assert all(g.start >= 0 and g.stop <= n for g, n in zip(grown, shape, strict=True))
            box = tuple(slice(a, a + n) for a, n in zip(start, size, strict=True))
            assert not canvas[box].any()  # no earlier box within the gap
            canvas[grown] = 1
        assert canvas.size < 4 * ((shapes + 5).prod(axis=1)).sum()


def test_part_depth_measures_each_part_as_scipy_does_alone():
    import scipy.ndimage as ndi

    from tools.segment import _part_depth

    rng = np.random.default_rng(3)
    for shape, sampling in (((60, 70), None), ((12, 40, 50), (4.0, 1.0, 1.0)),
                            ((30, 40), (1.0, 2.5))):
        parts = np.digitize(ndi.gaussian_filter(rng.random(shape), 2), [0.47, 0.5, 0.53])
        depth = _part_depth(parts.astype(np.uint8), sampling)
        for value in (1, 2, 3):
            alone = ndi.distance_transform_edt(parts == value, sampling=sampling)
            np.testing.assert_array_equal(depth[parts == value],
                                          alone[parts == value].astype(np.float32))


def test_rim_erosion_matches_the_distance_map():
    import scipy.ndimage as ndi

    from tools.segment import _erode, nearer_than

    rng = np.random.default_rng(5)
    for shape, sampling in (((41, 57), (1.0, 1.0)), ((1, 9), (1.0, 1.0)),
                            ((7, 30, 24), (4.0, 1.0, 1.0)), ((25, 31), (0.6, 1.0))):
        mask = ndi.gaussian_filter(rng.random(shape), 1.5) > 0.48
        for distance in (1.0, 2.0, 2.5):
            inner = _erode(mask, nearer_than(distance, sampling))
            depth = ndi.distance_transform_edt(mask, sampling=sampling)
            np.testing.assert_array_equal(inner, depth >= distance)


def test_region_seeds_on_shared_canvases_equal_each_region_read_alone():
    import scipy.ndimage as ndi

    from tools.segment import _canvas_gap, _clump_seeds, _region_seeds, nearer_than

    rng = np.random.default_rng(9)
    for shape, n, sampling in (((160, 200), 40, None), ((18, 70, 80), 14, (4.0, 1.0, 1.0))):
        # A crop, so that blobs are cut by every edge.
        image = blobs(n, shape=(180, 220), radius=(5.0, 10.0), overlap=True, seed=31).image
        image = image[11:-9, 7:-13]
        if len(shape) == 3:  # spheres of two brightnesses, several cut by each face
            grid = np.indices(shape).astype(float)
            image = np.zeros(shape)
            for _ in range(n):
                centre = rng.uniform(0, shape)
                d2 = sum(((g - c) * (4.0 if a == 0 else 1.0)) ** 2
                         for a, (g, c) in enumerate(zip(grid, centre, strict=True)))
                image = np.maximum(image, rng.uniform(0.5, 1.0) * (d2 < rng.uniform(6, 11) ** 2))
        image = ndi.gaussian_filter(image.astype(np.float32), 1.0)
        regions, count = ndi.label(image > 0.3, structure=np.ones((3,) * len(shape)))
        settings = {"footprint": np.ones((7,) * len(shape), dtype=bool),
                    "rim": nearer_than(2.0, sampling or (1.0,) * len(shape)),
                    "sampling": sampling, "blur": (1.0,) * len(shape), "min_depth": 2.0,
                    "noise": 0.01}
        gap = _canvas_gap(settings["footprint"], settings["rim"], settings["blur"])
        packed = _region_seeds(regions, image, gap=gap, **settings)
        alone = []
        cut = 0
        for index, box in enumerate(ndi.find_objects(regions), start=1):
            box = tuple(slice(max(b.start - 1, 0), min(b.stop + 1, side))
                        for b, side in zip(box, shape, strict=True))
            cut += any(b.start == 0 or b.stop == side for b, side in zip(box, shape, strict=True))
            ids = (regions[box] == index).astype(np.int32)
            alone += [p + [b.start for b in box] for p in _clump_seeds(ids, image[box], **settings)]
        assert cut >= 4 and count >= 8  # regions cut by the edge and whole ones
        assert sorted(map(tuple, packed)) == sorted(map(tuple, np.asarray(alone)))
