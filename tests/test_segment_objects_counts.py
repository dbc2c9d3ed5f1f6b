"""Counts of ``segment_objects`` on seeded generated images (truth from the generator).

The images use seeds outside those the defaults were chosen on
(``evals/toolbench/counting.py``: design seeds from 1000, held out from 5000).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from evals.toolbench.counting import dim_blobs
from tools.choices import collect_choices
from tools.segment import segment_objects
from tools.synthetic import blobs, nuclei_2d, timelapse
from tools.types import PixelSize


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
    # Six pairs (radius 6-8), centres at 0.6-0.9 of the summed radii, beside nine single
    # discs: the old rule (regions over 1.3 large objects) split none of the pairs (15 found).
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
    assert 20 <= _count(labels) <= 21  # at most one pair left whole
    assert chosen["method"]["value"] == "watershed"
    assert "more after splitting" in chosen["method"]["reason"]


def _pairs_of_two_brightnesses(seed: int, *, equal: bool = False) -> tuple[np.ndarray, int]:
    """Six overlapping pairs (centres at 0.55-0.8 of the summed radii), bright 0.95 beside dim
    0.55 (or both 0.8 when ``equal``), and nine single discs; the nearer edge owns a pixel."""
    rng = np.random.default_rng(seed)
    shape = (270, 280)
    discs = []
    for i, ratio in enumerate((0.55, 0.6, 0.65, 0.7, 0.75, 0.8)):
        r1, r2 = rng.uniform(6.0, 8.0, 2)
        cy, cx = 40 + 80 * (i // 3), 40 + 80 * (i % 3)
        t, d = rng.uniform(0, np.pi), ratio * (r1 + r2)
        a1, a2 = (0.8, 0.8) if equal else (0.95, 0.55)
        discs += [(cy, cx, r1, a1), (cy + d * np.sin(t), cx + d * np.cos(t), r2, a2)]
    discs += [(240, 30 + 28 * k, rng.uniform(6.0, 8.0), rng.uniform(0.55, 0.95))
              for k in range(9)]
    return _draw(shape, discs, rng), len(discs)


def _draw(shape: tuple[int, int], discs: list[tuple[float, float, float, float]],
          rng: np.random.Generator) -> np.ndarray:
    """Discs (cy, cx, r, amplitude), the nearer edge owning a pixel, blurred by 1 px, noise
    0.03."""
    yy, xx = np.indices(shape)
    image = np.zeros(shape, np.float32)
    depth = np.full(shape, -np.inf)
    for cy, cx, r, a in discs:
        here = r - np.hypot(yy - cy, xx - cx)
        take = (here >= 0) & (here > depth)
        image[take], depth[take] = a, here[take]
    image = ndi.gaussian_filter(image, 1.0) + 0.05
    return image + rng.normal(0, 0.03, shape).astype(np.float32)


@pytest.mark.parametrize("seed", [9201, 9202, 9203])
def test_overlapping_objects_of_two_brightnesses_are_split_at_the_step(seed: int) -> None:
    # The distance map alone leaves 3-4 of these pairs whole (17-18 of 21 before the step
    # seeds; equal brightness, which has no step, still gives 18-19).
    image, truth = _pairs_of_two_brightnesses(seed)
    assert _count(segment_objects(image)) == truth


def _chains_of_three_brightnesses(seed: int) -> tuple[np.ndarray, int]:
    """Six chains of three overlapping discs (radius 6-8, centres 0.6-0.7 of the summed radii
    apart) of brightness 0.55, 0.95 and 0.7 along the chain, and nine single discs."""
    rng = np.random.default_rng(seed)
    discs = []
    for i, ratio in enumerate((0.6, 0.65, 0.7) * 2):
        r = rng.uniform(6.0, 8.0, 3)
        at = np.array([50 + 100 * (i // 3), 50 + 100 * (i % 3)], float)
        t = rng.uniform(0, np.pi)
        for k, amplitude in enumerate((0.55, 0.95, 0.7)):
            discs.append((at[0], at[1], r[k], amplitude))
            if k < 2:
                at = at + ratio * (r[k] + r[k + 1]) * np.array([np.sin(t), np.cos(t)])
    discs += [(270, 30 + 30 * k, rng.uniform(6.0, 8.0), rng.uniform(0.55, 0.95))
              for k in range(9)]
    return _draw((300, 300), discs, rng), len(discs)


def test_a_clump_of_three_brightnesses_is_split_by_its_levels() -> None:
    # Both dim ends of a chain fall below Otsu's level; their levels differ, and read as one
    # spread (before 2026-12-04) that difference passed for texture: 141 of 162 on these six
    # images, against 151 with the spread read around each part's own level.
    found = truth = 0
    for seed in range(9300, 9306):
        image, n = _chains_of_three_brightnesses(seed)
        found, truth = found + _count(segment_objects(image)), truth + n
    assert truth == 162
    assert found >= 148


def test_the_count_does_not_depend_on_a_calibrated_pixel_size() -> None:
    # Seed depths are in pixels; distance maps in micrometres made objects look shallower
    # (15 of 21 at 0.2 um before).
    image, truth = _pairs_of_two_brightnesses(9204)
    found = _count(segment_objects(image))
    assert _count(segment_objects(image, pixel_size=PixelSize((0.2, 0.2), "µm"))) == found
    assert _count(segment_objects(image, pixel_size=PixelSize((5.0, 5.0), "µm"))) == found
    assert found >= truth - 1


def test_separated_noisy_discs_are_not_split_and_need_only_a_threshold() -> None:
    for seed in (9103, 9104):
        b = blobs(55, radius=(3.0, 6.0), noise=0.15, seed=seed)
        with collect_choices() as chosen:
            assert _count(segment_objects(b.image)) == 55
        assert chosen["method"]["value"] == "threshold"


def test_dim_objects_below_otsu_are_found() -> None:
    # Amplitudes log-uniform over a 10x range: Otsu's threshold alone misses the dim ones.
    from skimage.filters import threshold_otsu

    image, truth = dim_blobs(20, seed=9105, spread=10.0, overlap=False)
    otsu_count = int(ndi.label(ndi.gaussian_filter(image, 1.0) > threshold_otsu(image))[1])
    assert otsu_count < truth - 2
    with collect_choices() as chosen:
        found = _count(segment_objects(image))
    assert found == truth
    assert "dim object" in chosen["method"]["reason"]


def test_elongated_touching_nuclei_are_counted_within_a_fifth() -> None:
    nuclei = nuclei_2d((256, 256), n_nuclei=40, radius=(6, 12), seed=9106)
    truth = _count(nuclei.labels)
    assert abs(_count(segment_objects(nuclei.image)) - truth) <= 0.2 * truth


@pytest.mark.parametrize("seed", [9107, 9108])
def test_moving_nuclei_are_never_cut_in_two(seed: int) -> None:
    # A splitter that cuts one nucleus in a frame breaks its track; merging touching ones is
    # the lesser error. No frame may hold more objects than the truth.
    movie = timelapse(n_cells=12, seed=seed)
    for frame in range(0, len(movie.movie), 3):
        truth = movie.labels[frame]
        assert _count(segment_objects(movie.movie[frame])) <= _count(truth), frame


def test_stardist_method_counts_textured_touching_nuclei_better_than_auto() -> None:
    # Nuclei with a 6x brightness range that touch: the threshold's regions merge them and
    # miss the dim ones; the learned model finds and splits them (46 of 50 on both; auto 40 and 32).
    for seed in (9110, 9111):
        nuclei = nuclei_2d((256, 256), n_nuclei=50, radius=(6, 12), brightness_range=6.0,
                           seed=seed)
        truth = _count(nuclei.labels)
        with collect_choices() as chosen:
            learned = _count(segment_objects(nuclei.image, method="stardist"))
        default = _count(segment_objects(nuclei.image))
        assert abs(learned - truth) <= 0.08 * truth
        assert abs(learned - truth) < 0.5 * abs(default - truth)
        assert chosen["method"]["value"] == "stardist"
        assert "StarDist" in chosen["method"]["reason"]


def test_stardist_method_drops_what_the_model_finds_in_noise() -> None:
    # On a noisy image of 8 small blobs the bundled model alone finds ~170 "nuclei" in the
    # noise; objects no brighter than their surroundings are dropped.
    from tools.stardist_segment import stardist_segment

    b = blobs(8, radius=(2.5, 5.0), noise=0.2, seed=9114)
    assert _count(stardist_segment(b.image)) > 50
    assert _count(segment_objects(b.image, method="stardist")) == 8


def test_stardist_method_keeps_moving_nuclei_whole() -> None:
    movie = timelapse(n_cells=12, seed=9107)
    for frame in range(0, len(movie.movie), 3):
        truth = movie.labels[frame]
        found = _count(segment_objects(movie.movie[frame], method="stardist"))
        assert truth.max() > 0 and found <= _count(truth), frame


def test_stardist_method_needs_a_2d_image() -> None:
    from tools.errors import InputError

    volume = np.zeros((4, 32, 32), np.float32)
    volume[:, 10:20, 10:20] = 1.0
    with pytest.raises(InputError, match="2D"):
        segment_objects(volume, method="stardist")


@pytest.mark.parametrize("denoiser", ["wavelet", "nlm", "bilateral", "tv"])
def test_counts_after_each_denoiser_match_the_noisy_image(denoiser: str) -> None:
    # "Denoise, then count": the noise a denoiser leaves is smooth blotches that a
    # pixel-to-pixel noise estimate misses. Before the noise was measured over several
    # pixels, 10 blobs after the wavelet denoiser gave 36 objects, after bilateral 15.
    from tools import denoise

    for n, noise, seed in ((10, 0.15, 9121), (8, 0.25, 9122)):
        b = blobs(n, radius=(4.0, 8.0), noise=noise, seed=seed)
        cleaned = np.asarray(getattr(denoise, f"denoise_{denoiser}")(b.image))
        assert _count(segment_objects(cleaned)) == n, (denoiser, n)


def test_counts_after_the_wavelet_denoiser_with_the_learned_path() -> None:
    from tools.denoise import denoise_wavelet

    b = blobs(10, radius=(4.0, 8.0), noise=0.15, seed=9123)
    assert _count(segment_objects(denoise_wavelet(b.image), nuclei=True)) == 10


def test_dark_objects_after_a_denoiser_are_counted() -> None:
    # The noise is measured on the side of the threshold where the background is.
    from tools.denoise import denoise_wavelet
    from tools.segment import threshold_labeling

    b = blobs(10, radius=(4.0, 8.0), noise=0.15, seed=9141)
    dark = 1.2 - denoise_wavelet(b.image)
    assert _count(threshold_labeling(dark, dark_objects=True)) == 10
    assert _count(segment_objects(dark, dark_objects=True)) == 10
