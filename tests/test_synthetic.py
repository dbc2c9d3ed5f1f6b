"""Synthetic data generators, CTC reading/writing and the sample-data catalogue."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.ndimage as ndi
from skimage.filters import threshold_otsu
from skimage.measure import label as cc_label

from tools import synthetic
from tools.datasets import list_datasets, load_dataset, real_nuclei_2d
from tools.errors import InputError

# --------------------------------------------------------------------------------------------
# helpers


def _adjacent_pairs(labels: np.ndarray) -> set[tuple[int, int]]:
    """Unordered pairs of different labels sharing a face (no background between them)."""
    pairs: set[tuple[int, int]] = set()
    for axis in range(labels.ndim):
        a = np.moveaxis(labels, axis, 0)[:-1]
        b = np.moveaxis(labels, axis, 0)[1:]
        touch = (a > 0) & (b > 0) & (a != b)
        lo = np.minimum(a[touch], b[touch])
        hi = np.maximum(a[touch], b[touch])
        pairs |= set(zip(lo.tolist(), hi.tolist(), strict=True))
    return pairs


def _assert_consecutive(labels: np.ndarray, n: int) -> None:
    assert labels.dtype == np.int32
    np.testing.assert_array_equal(np.unique(labels), np.arange(n + 1))


def _assert_one_component_each(labels: np.ndarray) -> None:
    for k, sl in enumerate(ndi.find_objects(labels), start=1):
        if sl is None:
            continue
        # Full connectivity, as skimage.measure.label counts objects by default.
        n = cc_label(labels[sl] == k, connectivity=labels.ndim).max()
        assert n == 1, f"label {k} has {n} connected components"


def _z_over_y_extent(labels: np.ndarray) -> float:
    """Mean over objects of (std of z voxel coordinates) / (std of y voxel coordinates)."""
    ratios = []
    for k, sl in enumerate(ndi.find_objects(labels), start=1):
        if sl[0].start == 0 or sl[0].stop == labels.shape[0]:
            continue  # cut by the top or bottom plane: its z extent is not its own
        z, y, _ = np.nonzero(labels[sl] == k)
        ratios.append(z.std() / y.std())
    assert len(ratios) >= 10
    return float(np.mean(ratios))


# --------------------------------------------------------------------------------------------
# determinism


GENERATORS = {
    "nuclei_2d": lambda seed: synthetic.nuclei_2d((96, 96), n_nuclei=10, seed=seed),
    "nuclei_3d": lambda seed: synthetic.nuclei_3d((16, 64, 64), n_nuclei=8, seed=seed),
    "blobs": lambda seed: synthetic.blobs(10, shape=(96, 96), border=True, seed=seed),
    "noisy_clean_pair": lambda seed: synthetic.noisy_clean_pair((96, 96), seed=seed),
    "timelapse": lambda seed: synthetic.timelapse(6, shape=(64, 64), n_cells=4, seed=seed),
}


def _arrays(result: object) -> list[np.ndarray]:
    return [v for v in vars(result).values() if isinstance(v, np.ndarray)]


@pytest.mark.parametrize("name", list(GENERATORS))
def test_same_seed_same_data_other_seed_other_data(name: str) -> None:
    make = GENERATORS[name]
    a, b, c = make(1), make(1), make(2)
    for x, y in zip(_arrays(a), _arrays(b), strict=True):
        np.testing.assert_array_equal(x, y)
    assert any(
        x.shape != z.shape or not np.array_equal(x, z)
        for x, z in zip(_arrays(a), _arrays(c), strict=True)
    )


# --------------------------------------------------------------------------------------------
# nuclei_2d


@pytest.fixture(scope="module")
def nuclei() -> synthetic.SyntheticNuclei:
    return synthetic.nuclei_2d(seed=0)


def test_nuclei_2d_labels_count_consecutive_and_connected(nuclei) -> None:
    assert nuclei.image.shape == nuclei.labels.shape == (256, 256)
    assert nuclei.image.dtype == np.float32
    _assert_consecutive(nuclei.labels, 40)
    _assert_one_component_each(nuclei.labels)
    assert nuclei.meta.axes == "YX"
    assert nuclei.meta.unit == "µm"
    assert nuclei.meta.spacing == {"Y": 0.5, "X": 0.5}


def test_nuclei_2d_brighter_inside_and_every_nucleus_visible(nuclei) -> None:
    img, lab = nuclei.image, nuclei.labels
    assert img[lab > 0].mean() > 2.0 * img[lab == 0].mean()
    # Each label stands out from the background ring around it: no invisible ground truth.
    for k, sl in enumerate(ndi.find_objects(lab), start=1):
        grown = tuple(slice(max(s.start - 6, 0), s.stop + 6) for s in sl)
        mine = lab[grown] == k
        ring = ndi.binary_dilation(mine, iterations=5) & (lab[grown] == 0)
        ring &= ~ndi.binary_dilation(lab[grown] > 0, iterations=2)
        if ring.sum() < 10:
            continue
        assert img[grown][mine].mean() > 1.3 * img[grown][ring].mean(), f"label {k} invisible"


def test_nuclei_2d_touching_makes_clumps() -> None:
    clumped = synthetic.nuclei_2d(n_nuclei=40, touching=0.5, seed=3).labels
    apart = synthetic.nuclei_2d(n_nuclei=40, touching=0.0, seed=3).labels
    n_clumped = len(_adjacent_pairs(clumped))
    # Every nucleus placed in contact overlaps its partner, so shares a boundary with it.
    assert n_clumped >= 0.8 * 20
    assert len(_adjacent_pairs(apart)) < n_clumped / 4
    _assert_one_component_each(clumped)


def test_nuclei_2d_brightness_spread_and_size_parameter() -> None:
    r = synthetic.nuclei_2d(n_nuclei=40, radius=(4.0, 6.0), mitotic=0.0, noise=0.0, seed=5)
    means = ndi.mean(r.image, r.labels, np.arange(1, 41))
    assert np.percentile(means, 95) / np.percentile(means, 5) > 1.8
    areas = np.bincount(r.labels.ravel())[1:]
    assert 30 < np.median(areas) < 130  # pi * r**2 for r of 4-6 px, some cut by the border


def test_nuclei_2d_noise_parameter() -> None:
    clean = synthetic.nuclei_2d((128, 128), n_nuclei=10, noise=0.0, seed=2).image
    low = synthetic.nuclei_2d((128, 128), n_nuclei=10, noise=0.02, seed=2).image
    high = synthetic.nuclei_2d((128, 128), n_nuclei=10, noise=0.1, seed=2).image
    assert np.std(high - clean) > 3 * np.std(low - clean) > 0


def test_nuclei_2d_rejects_bad_input() -> None:
    with pytest.raises(InputError, match="n_nuclei"):
        synthetic.nuclei_2d(n_nuclei=-1)
    with pytest.raises(InputError, match="seed"):
        synthetic.nuclei_2d(seed=-3)
    with pytest.raises(InputError, match="shape"):
        synthetic.nuclei_2d((10, 20, 30))
    with pytest.raises(InputError, match="radius"):
        synthetic.nuclei_2d(radius=(8.0, 4.0))
    with pytest.raises(InputError, match="could place only"):
        synthetic.nuclei_2d((64, 64), n_nuclei=200, touching=0.0)


def test_nuclei_2d_empty_image() -> None:
    r = synthetic.nuclei_2d((64, 64), n_nuclei=0)
    assert r.labels.max() == 0
    assert np.isfinite(r.image).all()


# --------------------------------------------------------------------------------------------
# nuclei_3d


def test_nuclei_3d_anisotropy_follows_spacing() -> None:
    r = synthetic.nuclei_3d(seed=0)
    assert r.image.shape == r.labels.shape == (32, 128, 128)
    assert r.meta.axes == "ZYX"
    assert r.meta.spacing == {"Z": 2.0, "Y": 0.5, "X": 0.5}
    _assert_consecutive(r.labels, 40)
    _assert_one_component_each(r.labels)
    expected = 0.5 / 2.0
    assert _z_over_y_extent(r.labels) == pytest.approx(expected, rel=0.25)
    assert r.image[r.labels > 0].mean() > 2.0 * r.image[r.labels == 0].mean()


def test_nuclei_3d_isotropic_spacing_gives_round_objects() -> None:
    r = synthetic.nuclei_3d(
        (48, 48, 48),
        n_nuclei=20,
        radius_um=(3.0, 4.0),
        spacing=(0.5, 0.5, 0.5),
        blur_um=(0.4, 0.4),
        seed=1,
    )
    assert _z_over_y_extent(r.labels) == pytest.approx(1.0, rel=0.25)


# --------------------------------------------------------------------------------------------
# blobs


@pytest.mark.parametrize("n", [1, 7, 50, 100])
def test_blobs_count(n: int) -> None:
    r = synthetic.blobs(n, seed=n)
    assert r.count == n
    assert r.centers.shape == (n, 2)
    assert r.radii.shape == r.touches_border.shape == (n,)
    _assert_consecutive(r.labels, n)
    assert not r.touches_border.any()


def test_blobs_threshold_count_matches_ground_truth() -> None:
    r = synthetic.blobs(40, noise=0.02, seed=11)
    mask = r.image > threshold_otsu(r.image)
    assert cc_label(mask).max() == 40


def test_blobs_border_blobs_are_cut_by_the_border() -> None:
    r = synthetic.blobs(40, border=True, seed=4)
    assert 0 < r.touches_border.sum() < 40
    h, w = r.labels.shape
    edge = np.zeros((h, w), bool)
    edge[[0, -1], :] = True
    edge[:, [0, -1]] = True
    on_edge = set(np.unique(r.labels[edge]).tolist()) - {0}
    assert on_edge == set((np.flatnonzero(r.touches_border) + 1).tolist())
    # Visible in the image, not only in the labels.
    for k in on_edge:
        assert r.image[edge & (r.labels == k)].max() > 0.3


def test_blobs_overlap_still_counts_n() -> None:
    r = synthetic.blobs(30, overlap=True, noise=0.0, seed=2)
    assert r.count == 30
    _assert_consecutive(r.labels, 30)
    assert len(_adjacent_pairs(r.labels)) >= 5
    apart = synthetic.blobs(30, overlap=False, noise=0.0, seed=2)
    assert len(_adjacent_pairs(apart.labels)) == 0


def test_blobs_validation() -> None:
    assert synthetic.blobs(0).count == 0
    with pytest.raises(InputError, match="n must be in"):
        synthetic.blobs(101)
    with pytest.raises(InputError, match="do not fit"):
        synthetic.blobs(100, shape=(64, 64))


# --------------------------------------------------------------------------------------------
# noisy_clean_pair


def test_noisy_pair_variance_follows_photons_and_mean_is_unbiased() -> None:
    residual_var = []
    for photons in (100.0, 20.0, 5.0):
        p = synthetic.noisy_clean_pair(photons=photons, read_noise=1.0, seed=0)
        assert p.clean.min() >= 0 and p.clean.max() == pytest.approx(1.0)
        diff = (p.noisy - p.clean).astype(np.float64)
        assert abs(diff.mean()) < 0.005
        expected = p.clean.mean() / photons + (1.0 / photons) ** 2
        assert diff.var() == pytest.approx(expected, rel=0.1)
        residual_var.append(diff.var())
    assert residual_var[0] < residual_var[1] < residual_var[2]


def test_noisy_pair_3d_and_blobs() -> None:
    p3 = synthetic.noisy_clean_pair((16, 48, 48), photons=10.0, seed=1)
    assert p3.noisy.shape == p3.clean.shape == (16, 48, 48)
    assert p3.meta.axes == "ZYX"
    pb = synthetic.noisy_clean_pair((96, 96), kind="blobs", seed=1)
    assert pb.labels.max() >= 1
    with pytest.raises(InputError, match="kind"):
        synthetic.noisy_clean_pair(kind="cells")


# --------------------------------------------------------------------------------------------
# timelapse


def _check_tracks_against_movie(labels: np.ndarray, tracks: pd.DataFrame) -> None:
    present = {}
    for t, frame in enumerate(labels):
        for k in np.unique(frame[frame > 0]).tolist():
            present.setdefault(k, []).append(t)
    assert set(present) == set(tracks["label"])
    ends = dict(zip(tracks["label"], tracks["end"], strict=True))
    for row in tracks.itertuples():
        assert present[row.label] == list(range(row.begin, row.end + 1))
        if row.parent:
            assert row.parent in ends
            assert ends[row.parent] == row.begin - 1


def test_timelapse_ground_truth_is_consistent() -> None:
    r = synthetic.timelapse(20, n_cells=10, division_rate=0.05, seed=0)
    assert r.movie.shape == r.labels.shape == (20, 128, 128)
    assert r.movie.dtype == np.float32 and r.labels.dtype == np.int32
    assert list(r.tracks.columns) == ["label", "begin", "end", "parent"]
    _check_tracks_against_movie(r.labels, r.tracks)
    daughters = r.tracks[r.tracks.parent > 0]
    assert len(daughters) >= 2
    assert (daughters.groupby("parent").size() == 2).all()
    for t in (0, 10, 19):
        _assert_one_component_each(r.labels[t])
    # The object table matches the label movie: each centre lies in its own label.
    iy = np.clip(np.round(r.objects.y).astype(int), 0, 127)
    ix = np.clip(np.round(r.objects.x).astype(int), 0, 127)
    np.testing.assert_array_equal(r.labels[r.objects.frame, iy, ix], r.objects.label)
    assert len(r.objects) == int((r.tracks.end - r.tracks.begin + 1).sum())
    # Cells move: mean step length is in the range of `speed`.
    steps = r.objects.sort_values(["label", "frame"]).groupby("label")[["y", "x"]].diff()
    mean_step = np.hypot(steps.y, steps.x).mean()
    assert 0.8 < mean_step < 3.5


def test_timelapse_no_divisions_at_zero_rate() -> None:
    r = synthetic.timelapse(15, n_cells=8, division_rate=0.0, seed=3)
    assert (r.tracks.parent == 0).all()
    assert len(r.tracks) == 8
    assert (r.tracks.begin == 0).all() and (r.tracks.end == 14).all()


# --------------------------------------------------------------------------------------------
# Cell Tracking Challenge files


@pytest.fixture(scope="module")
def movie() -> synthetic.Timelapse:
    return synthetic.timelapse(8, shape=(64, 64), n_cells=5, division_rate=0.2, seed=1)


@pytest.mark.parametrize("kind", ["GT", "RES"])
def test_ctc_round_trip(tmp_path, movie, kind: str) -> None:
    track_file = synthetic.write_ctc(tmp_path, movie.labels, movie.tracks, kind=kind)
    if kind == "GT":
        assert track_file == tmp_path / "TRA" / "man_track.txt"
        assert (tmp_path / "TRA" / "man_track007.tif").is_file()
    else:
        assert track_file == tmp_path / "res_track.txt"
        assert (tmp_path / "mask000.tif").is_file()
    back = synthetic.read_ctc(tmp_path)
    assert back.kind == kind
    np.testing.assert_array_equal(back.labels, movie.labels)
    pd.testing.assert_frame_equal(back.tracks, movie.tracks.astype(np.int64))
    first = track_file.read_text().splitlines()[0].split()
    assert len(first) == 4


def test_write_ctc_rejects_inconsistent_tables(tmp_path, movie) -> None:
    tracks = movie.tracks
    wrong_begin = tracks.copy()
    wrong_begin.loc[0, "begin"] = 1
    with pytest.raises(InputError, match=r"track 1: the table says frames 1-"):
        synthetic.write_ctc(tmp_path, movie.labels, wrong_begin)
    leaf = int(tracks.label[~tracks.label.isin(tracks.parent)].iloc[0])
    with pytest.raises(InputError, match=f"label {leaf} appears in the movie"):
        synthetic.write_ctc(tmp_path, movie.labels, tracks[tracks.label != leaf])
    bad_parent = tracks.copy()
    bad_parent.loc[1, "parent"] = 99
    with pytest.raises(InputError, match="parent 99 is not in the table"):
        synthetic.write_ctc(tmp_path, movie.labels, bad_parent)
    with pytest.raises(InputError, match="lacks column"):
        synthetic.write_ctc(tmp_path, movie.labels, tracks.drop(columns="parent"))
    assert not (tmp_path / "TRA").exists()
    with pytest.raises(InputError, match="not a CTC folder"):
        synthetic.read_ctc(tmp_path)


# --------------------------------------------------------------------------------------------
# datasets


def test_real_nuclei_2d_ships_offline() -> None:
    d = real_nuclei_2d()
    assert d.image.shape == d.labels.shape == (512, 512)
    # The shipped mask numbers nuclei up to 183 with gaps; 125 are present.
    _assert_consecutive(d.labels, 125)
    assert d.meta.unit == "pixel"


def test_load_dataset_by_name() -> None:
    names = list_datasets()
    assert {"real_nuclei_2d", "cell", "coins", "synthetic_nuclei_2d", "synthetic_timelapse"} <= set(
        names
    )
    assert all(isinstance(v, str) and v for v in names.values())
    coins = load_dataset("Coins")
    assert coins.image.shape == (303, 384)
    assert load_dataset("cell").image.shape == (660, 550)
    blobs = load_dataset("synthetic-blobs", seed=2)
    assert len(blobs.tables["blobs"]) == blobs.labels.max() == 30
    with pytest.raises(InputError, match="real_nuclei_2d") as err:
        load_dataset("kidney")
    assert "synthetic_nuclei_2d" in str(err.value)
