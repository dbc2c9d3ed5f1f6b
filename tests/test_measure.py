"""Object measurements against analytic shapes and scikit-image, colocalization, summary."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from skimage.measure import regionprops_table

from tools.errors import InputError
from tools.measure import measure_colocalization, measure_objects, summarize_measurements
from tools.registry import get_tool
from tools.synthetic import nuclei_2d
from tools.types import ImageMeta, PixelSize
from tools.workspace import Workspace


def disk(shape: tuple[int, int], centre: tuple[float, float], radius: float) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius**2


def test_disk_area_perimeter_circularity_in_microns():
    labels = disk((200, 200), (100, 100), 40).astype(np.int32)
    table = measure_objects(labels, pixel_size=PixelSize((0.5, 0.5), "µm"))
    row = table.iloc[0]
    assert row["area_um2"] == pytest.approx(math.pi * 20**2, rel=0.01)
    assert row["area_px"] == labels.sum()
    assert row["perimeter_um"] == pytest.approx(2 * math.pi * 20, rel=0.03)
    assert row["circularity"] == pytest.approx(1.0, abs=0.05)
    assert row["roundness"] == pytest.approx(1.0, abs=0.02)
    assert row["equivalent_diameter_um"] == pytest.approx(40, rel=0.01)
    assert row["major_axis_um"] == pytest.approx(40, rel=0.02)
    assert row["elongation"] == pytest.approx(1.0, abs=0.01)
    assert row["solidity"] == pytest.approx(1.0, abs=0.03)
    assert row["extent"] == pytest.approx(labels.sum() / 81**2)  # bounding box 81 x 81
    assert row["centroid_y_um"] == pytest.approx(50.0)
    assert "area_px2" not in table.columns


def test_ellipse_axes_and_eccentricity():
    yy, xx = np.mgrid[:120, :200]
    labels = (((yy - 60) / 20.0) ** 2 + ((xx - 100) / 60.0) ** 2 <= 1).astype(np.int32)
    row = measure_objects(labels).iloc[0]
    assert row["major_axis_px"] == pytest.approx(120, rel=0.02)
    assert row["minor_axis_px"] == pytest.approx(40, rel=0.03)
    assert row["elongation"] == pytest.approx(3.0, rel=0.03)
    assert row["eccentricity"] == pytest.approx(math.sqrt(1 - (20 / 60) ** 2), abs=0.01)
    assert row["circularity"] < 0.85


def test_matches_regionprops_on_synthetic_nuclei():
    data = nuclei_2d((192, 192), n_nuclei=30, seed=5)
    table = measure_objects(data.labels, data.image)
    ref = pd.DataFrame(regionprops_table(
        data.labels, data.image,
        properties=["label", "area", "centroid", "perimeter", "axis_major_length",
                    "axis_minor_length", "eccentricity", "extent", "solidity", "bbox",
                    "intensity_mean", "intensity_std", "intensity_min", "intensity_max"],
    ))
    assert list(table["label"]) == list(ref["label"])
    pairs = {
        "area_px": "area", "centroid_x_px": "centroid-1",
        "major_axis_px": "axis_major_length", "minor_axis_px": "axis_minor_length",
        "eccentricity": "eccentricity", "extent": "extent", "bbox_max_y_px": "bbox-2",
        "mean_intensity": "intensity_mean", "std_intensity": "intensity_std",
        "min_intensity": "intensity_min", "max_intensity": "intensity_max",
    }
    for ours, theirs in pairs.items():
        np.testing.assert_allclose(table[ours], ref[theirs], rtol=1e-5, atol=1e-6, err_msg=ours)
    # Solidity uses the hull of the pixel squares, scikit-image the rasterised hull: close.
    np.testing.assert_allclose(table["solidity"], ref["solidity"], atol=0.08)
    # The perimeter is Crofton's (4 directions), not scikit-image's pixel-edge estimator.
    from skimage.measure import perimeter_crofton

    for row in table.itertuples():
        length = perimeter_crofton(data.labels == row.label, 4)
        assert row.perimeter_px == pytest.approx(length, rel=1e-8)


def test_neighbours_on_a_constructed_layout():
    labels = np.zeros((40, 60), np.int32)
    labels[5:15, 5:15] = 1
    labels[5:15, 15:25] = 2  # shares an edge with 1
    labels[15:25, 25:35] = 3  # touches 2 at one corner only
    labels[30:38, 50:58] = 4  # alone
    table = measure_objects(labels).set_index("label")
    assert table["n_neighbors"].to_dict() == {1: 1, 2: 2, 3: 1, 4: 0}
    assert table.loc[1, "nearest_neighbor_distance_px"] == pytest.approx(10.0)
    # 2 is 10 from 1 and sqrt(10^2 + 10^2) from 3
    assert table.loc[2, "nearest_neighbor_distance_px"] == pytest.approx(10.0)
    assert table.loc[3, "nearest_neighbor_distance_px"] == pytest.approx(math.hypot(10, 10))


def test_totals_do_not_overflow_uint16():
    labels = np.ones((1200, 1200), np.int32)
    image = np.full((1200, 1200), 65535, np.uint16)
    row = measure_objects(labels, image).iloc[0]
    assert row["total_intensity"] == pytest.approx(65535.0 * 1200 * 1200)
    assert row["total_intensity"] > 2**32
    assert row["mean_intensity"] == pytest.approx(65535.0)
    assert row["std_intensity"] == pytest.approx(0.0, abs=1e-6)


def test_3d_ellipsoid_volume_and_surface_with_anisotropic_voxels():
    spacing = (2.0, 0.5, 0.5)  # µm
    semi = (8.0, 6.0, 5.0)  # µm along z, y, x
    shape = (12, 40, 40)
    zz, yy, xx = np.meshgrid(*[(np.arange(n) - (n - 1) / 2) * s for n, s in
                               zip(shape, spacing, strict=True)], indexing="ij")
    labels = ((zz / semi[0]) ** 2 + (yy / semi[1]) ** 2 + (xx / semi[2]) ** 2 <= 1).astype(
        np.int32
    )
    row = measure_objects(labels, pixel_size=PixelSize(spacing, "µm")).iloc[0]
    volume = 4 / 3 * math.pi * math.prod(semi)
    assert row["volume_um3"] == pytest.approx(volume, rel=0.05)
    a, b, c = semi  # Knud Thomsen's approximation of the ellipsoid surface
    p = 1.6075
    surface = 4 * math.pi * (((a * b) ** p + (a * c) ** p + (b * c) ** p) / 3) ** (1 / p)
    assert row["surface_area_um2"] == pytest.approx(surface, rel=0.05)
    assert row["major_axis_um"] == pytest.approx(16.0, rel=0.1)
    assert 0.8 < row["sphericity"] <= 1.05
    assert 0.75 < row["solidity"] < 1.0  # hull of voxel cubes: coarse z steps lower it
    assert "centroid_z_um" in row and "bbox_min_z_px" in row


def test_bad_input_is_refused():
    labels = np.zeros((10, 10), np.int32)
    with pytest.raises(InputError, match="empty"):
        measure_objects(labels)
    labels[2:5, 2:5] = 1
    with pytest.raises(InputError, match="shape"):
        measure_objects(labels, np.zeros((10, 11), np.float32))
    with pytest.raises(InputError, match="integer"):
        measure_objects(labels.astype(np.float32))
    with pytest.raises(InputError, match="spacing"):
        measure_objects(labels, pixel_size=PixelSize((1.0, 1.0, 1.0), "µm"))
    with pytest.raises(InputError, match="2D or 3D"):
        measure_objects(labels[None, None])


def test_colocalization_pearson_and_manders():
    rng = np.random.default_rng(0)
    a = rng.random((100, 100))
    same = measure_colocalization(a, a).iloc[0]
    assert same["pearson"] == pytest.approx(1.0)
    independent = measure_colocalization(a, rng.random((100, 100))).iloc[0]
    assert abs(independent["pearson"]) < 0.05
    # Two half-overlapping squares of constant intensity: a quarter overlap by construction.
    first = np.zeros((100, 100))
    second = np.zeros((100, 100))
    first[20:60, 20:60] = 1.0  # 1600 pixels
    second[40:80, 20:60] = 2.0  # shares rows 40..59: half of each square
    row = measure_colocalization(first, second, threshold=0.5, threshold_b=0.5).iloc[0]
    assert row["manders_m1"] == pytest.approx(0.5)
    assert row["manders_m2"] == pytest.approx(0.5)
    second[20:60, 20:40] = 2.0  # now covers another quarter of the first square
    row = measure_colocalization(first, second, threshold=0.5, threshold_b=0.5).iloc[0]
    assert row["manders_m1"] == pytest.approx(0.75)


def test_colocalization_per_object_and_bad_input():
    labels = np.zeros((50, 50), np.int32)
    labels[:25] = 1
    labels[25:] = 2
    rng = np.random.default_rng(1)
    a = rng.random((50, 50))
    b = a.copy()
    b[25:] = rng.random((25, 50))
    table = measure_colocalization(a, b, labels)
    assert list(table["label"]) == [1, 2]
    assert table.loc[0, "pearson"] == pytest.approx(1.0)
    assert abs(table.loc[1, "pearson"]) < 0.15
    with pytest.raises(InputError, match="shape"):
        measure_colocalization(a, b[:10])
    with pytest.raises(InputError, match="constant"):
        measure_colocalization(a, np.ones((50, 50)))


def test_summary_and_csv_through_the_workspace(tmp_path):
    data = nuclei_2d((128, 128), n_nuclei=12, seed=2)
    workspace = Workspace([tmp_path], output_root=tmp_path / "out")
    workspace.add("nuclei", data.image, kind="image", meta=data.meta)
    workspace.add("nuclei_masks", data.labels, kind="labels", meta=data.meta)
    result = get_tool(measure_objects).run(
        workspace, {"labels": "nuclei_masks", "image": "nuclei"}
    )
    table = workspace.get(result.outputs[0]).data
    assert "area_um2" in table.columns and len(table) == data.n_objects
    summary = get_tool(summarize_measurements).run(workspace, {"table": result.outputs[0]})
    stats = workspace.get(summary.outputs[0]).data.set_index("column")
    assert stats.loc["area_um2", "count"] == data.n_objects
    assert stats.loc["area_um2", "mean"] == pytest.approx(table["area_um2"].mean())
    assert stats.loc["area_um2", "median"] == pytest.approx(table["area_um2"].median())
    assert "label" not in stats.index
    path = workspace.save(result.outputs[0])
    assert pd.read_csv(path).shape == table.shape
    with pytest.raises(InputError, match="numeric"):
        summarize_measurements(pd.DataFrame({"name": ["a"]}))
    assert isinstance(data.meta, ImageMeta)


def test_vectorised_convex_hulls_equal_qhull_on_many_objects():
    import scipy.ndimage as ndi

    import tools.measure as measure

    rng = np.random.default_rng(8)
    labels = ndi.label(ndi.gaussian_filter(rng.random((300, 300)), 1.0) > 0.52)[0]
    labels[200:, 200:] = 0
    labels[210:290, 210:215] = labels.max() + 1  # a thin bar
    labels[215, 230] = labels.max() + 1  # and an object of one pixel
    assert labels.max() > 2 * measure.HULL_BATCH
    tables = {}
    for batch in (measure.HULL_BATCH, 10**9):  # vectorised, then Qhull for every object
        measure.HULL_BATCH = batch
        try:
            tables[batch] = measure_objects(labels, pixel_size=PixelSize((0.4, 0.7), "µm"))
        finally:
            measure.HULL_BATCH = 64
    fast, slow = tables.values()
    np.testing.assert_allclose(fast["solidity"], slow["solidity"], rtol=1e-12)
    assert (fast["solidity"] <= 1 + 1e-12).all() and fast["solidity"].min() < 0.9
