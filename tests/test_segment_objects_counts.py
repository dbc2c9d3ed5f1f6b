"""Exact counts of ``segment_objects`` on seeded generated images (truth from the generator).

The images use seeds and parameters outside those the defaults were chosen on
(``evals/toolbench/counting.py``: design seeds from 1000, held out from 5000).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from evals.toolbench.counting import dim_blobs
from tools.choices import collect_choices
from tools.segment import segment_objects
from tools.synthetic import blobs


def _count(labels: np.ndarray) -> int:
    return int(np.unique(labels[labels > 0]).size)


def _discs(shape: tuple[int, int], discs: list[tuple[float, float, float]], *, seed: int,
           noise: float = 0.03) -> np.ndarray:
    """Bright discs (cy, cx, r) of equal amplitude, blurred by 1 px, with Gaussian noise."""
    yy, xx = np.indices(shape)
    inside = np.zeros(shape, dtype=bool)
    for cy, cx, r in discs:
        inside |= np.hypot(yy - cy, xx - cx) <= r
    rng = np.random.default_rng(seed)
    image = ndi.gaussian_filter(inside.astype(np.float32), 1.0) + 0.05
    return image + rng.normal(0, noise, shape).astype(np.float32)


def test_overlapping_pairs_of_discs_are_split() -> None:
    # Six pairs (radius 6-8), centres at 0.6-0.9 of the summed radii, next to nine single
    # discs (the image's objects are then measurably round).
    rng = np.random.default_rng(9101)
    discs = []
    for i, ratio in enumerate((0.6, 0.66, 0.72, 0.78, 0.84, 0.9)):
        r1, r2 = rng.uniform(6.0, 8.0, 2)
        cy, cx = 40 + 80 * (i // 3), 40 + 80 * (i % 3)
        t = rng.uniform(0, np.pi)
        d = ratio * (r1 + r2)
        discs += [(cy, cx, r1), (cy + d * np.sin(t), cx + d * np.cos(t), r2)]
    discs += [(240, 30 + 28 * k, rng.uniform(6.0, 8.0)) for k in range(9)]
    image = _discs((270, 280), discs, seed=9101)
    with collect_choices() as chosen:
        labels = segment_objects(image)
    assert _count(labels) == 21
    assert chosen["method"]["value"] == "watershed"


def test_a_small_disc_on_a_large_one_is_split() -> None:
    # Radius 4 on radius 9 at 0.8 of the summed radii: no neck in the distance map (a
    # shoulder), found by the disc cover.
    shape = (96, 96)
    yy, xx = np.indices(shape)
    big = np.hypot(yy - 48, xx - 40) <= 9
    small = np.hypot(yy - 48, xx - (40 + 0.8 * 13)) <= 4
    rng = np.random.default_rng(9102)
    image = ndi.gaussian_filter((big | small).astype(np.float32), 1.0) + 0.05
    image += rng.normal(0, 0.03, shape).astype(np.float32)
    # A few separate discs of both sizes, so that the scale and the shapes are measurable.
    for cy, cx, r in ((15, 15, 9), (15, 80, 4), (80, 15, 4), (80, 80, 9), (80, 48, 6)):
        image += ndi.gaussian_filter((np.hypot(yy - cy, xx - cx) <= r).astype(np.float32), 1.0)
    assert _count(segment_objects(image)) == 7


def test_separated_noisy_discs_are_not_split() -> None:
    for seed in (9103, 9104):
        b = blobs(55, radius=(3.0, 6.0), noise=0.15, seed=seed)
        assert _count(segment_objects(b.image)) == 55


def test_dim_objects_below_otsu_are_found() -> None:
    # Amplitudes log-uniform over a 10x range: Otsu's threshold alone misses the dim ones.
    from skimage.filters import threshold_otsu

    image, truth = dim_blobs(20, seed=9105, spread=10.0, overlap=False)
    otsu_count = int(ndi.label(ndi.gaussian_filter(image, 1.0) > threshold_otsu(image))[1])
    assert otsu_count < truth - 2
    with collect_choices() as chosen:
        found = _count(segment_objects(image))
    assert found == truth
    assert "triangle" in chosen["method"]["reason"]


def test_elongated_touching_nuclei_are_not_cut_into_discs() -> None:
    from tools.synthetic import nuclei_2d

    nuclei = nuclei_2d((256, 256), n_nuclei=40, radius=(6, 12), seed=9106)
    truth = _count(nuclei.labels)
    found = _count(segment_objects(nuclei.image))
    assert abs(found - truth) <= 0.1 * truth
