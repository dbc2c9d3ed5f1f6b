"""Filters and background removal do what they claim on images with a known answer."""

from __future__ import annotations

import numpy as np
import pytest

from tools.errors import InputError, ToolCallError
from tools.filters import (
    difference_of_gaussians,
    ellipsoid_footprint,
    gaussian_blur,
    laplace_filter,
    median_filter,
    per_axis,
    rolling_ball_background,
    sobel_edges,
    top_hat,
)
from tools.registry import get_tool
from tools.types import ImageMeta, PixelSize
from tools.workspace import Workspace

ALL_FILTERS = [
    gaussian_blur,
    median_filter,
    laplace_filter,
    sobel_edges,
    difference_of_gaussians,
    top_hat,
    rolling_ball_background,
]


def blobs_on(background: np.ndarray, centres: list[tuple[int, ...]], radius: float, height: float):
    """Gaussian blobs of a given height added to a background; returns image and blob mask."""
    grids = np.indices(background.shape)
    image = background.astype(np.float64).copy()
    mask = np.zeros(background.shape, bool)
    for c in centres:
        d2 = sum((g - ci) ** 2 for g, ci in zip(grids, c, strict=True))
        image += height * np.exp(-d2 / (2 * radius**2))
        mask |= d2 <= (3 * radius) ** 2
    return image.astype(np.float32), mask


def ramp(shape: tuple[int, int], low: float = 100.0, high: float = 400.0) -> np.ndarray:
    """An illumination gradient from ``low`` (left) to ``high`` (right)."""
    return np.broadcast_to(np.linspace(low, high, shape[1], dtype=np.float32), shape).copy()


CENTRES = [(30, 30), (30, 90), (90, 40), (80, 100), (60, 64)]


def second_moment(image: np.ndarray, axis: int) -> float:
    """Standard deviation of an impulse response along one axis, in pixels."""
    profile = image.sum(axis=tuple(a for a in range(image.ndim) if a != axis))
    x = np.arange(len(profile))
    mean = (profile * x).sum() / profile.sum()
    return float(np.sqrt((profile * (x - mean) ** 2).sum() / profile.sum()))


def test_gaussian_blur_reduces_noise_and_keeps_mean():
    rng = np.random.default_rng(0)
    noisy = rng.normal(10.0, 2.0, (128, 128)).astype(np.float32)
    out = gaussian_blur(noisy, sigma=2.0)
    assert out.dtype == np.float32 and out.shape == noisy.shape
    assert out.std() < noisy.std() / 3  # a sigma-2 blur divides white noise std by ~7
    assert abs(out.mean() - noisy.mean()) < 0.01


def test_anisotropic_sigma_follows_voxel_size():
    impulse = np.zeros((33, 65, 65), np.float32)
    impulse[16, 32, 32] = 1.0
    out = gaussian_blur(impulse, sigma=4.0, pixel_size=PixelSize((1.0, 0.25, 0.25), "µm"))
    # 4 pixels of 0.25 µm = 1 µm, which is 1 pixel along Z.
    assert second_moment(out, 2) == pytest.approx(4.0, rel=0.03)
    assert second_moment(out, 1) == pytest.approx(4.0, rel=0.03)
    assert second_moment(out, 0) == pytest.approx(1.0, rel=0.08)
    isotropic = gaussian_blur(impulse, sigma=4.0)
    assert second_moment(isotropic, 0) == pytest.approx(4.0, rel=0.03)


def test_per_axis_and_footprint_shapes():
    assert per_axis(3.0, 3, PixelSize((2.0, 0.5, 0.5), "µm")) == (0.75, 3.0, 3.0)
    assert per_axis(3.0, 2, None) == (3.0, 3.0)
    # Z radius below one pixel: the footprint stays in its plane.
    assert ellipsoid_footprint((0.75, 3.0, 3.0)).shape == (1, 7, 7)
    assert ellipsoid_footprint((2.0, 2.0)).sum() == 13  # the 13-pixel digital disk


def test_median_removes_hot_pixels_exactly():
    rng = np.random.default_rng(1)
    flat = np.full((64, 64), 50.0, np.float32)
    hot = flat.copy()
    idx = rng.integers(0, 64, (2, 60))
    hot[tuple(idx)] = 4000.0
    np.testing.assert_array_equal(median_filter(hot, radius=1), flat)
    stack = np.stack([hot] * 5)
    out = median_filter(stack, radius=2, pixel_size=PixelSize((3.0, 1.0, 1.0), "µm"))
    np.testing.assert_array_equal(out, np.stack([flat] * 5))


def test_laplace_peaks_at_blob_centres():
    image, _ = blobs_on(np.zeros((128, 128)), CENTRES, radius=4.0, height=100.0)
    response = laplace_filter(image, sigma=4.0 / np.sqrt(2))
    for c in CENTRES:
        window = response[c[0] - 3 : c[0] + 4, c[1] - 3 : c[1] + 4]
        assert window.max() == response[c[0] - 6 : c[0] + 7, c[1] - 6 : c[1] + 7].max()
        assert window.max() > 10.0
    assert abs(response[0:10, 0:10]).max() < 0.5  # flat corner


def test_sobel_finds_a_step_edge():
    step = np.zeros((32, 64), np.float32)
    step[:, 32:] = 10.0
    edges = sobel_edges(step)
    assert set(np.argmax(edges, axis=1)) <= {31, 32}
    assert edges[:, :29].max() == 0.0 and edges[:, 35:].max() == 0.0
    assert sobel_edges(np.stack([step] * 4)).shape == (4, 32, 64)


def test_difference_of_gaussians_removes_background_gradient():
    blobs, mask = blobs_on(np.zeros((128, 128)), CENTRES, radius=3.0, height=200.0)
    image = blobs + ramp((128, 128))
    out = difference_of_gaussians(image, low_sigma=1.0, high_sigma=6.0)
    inner = (slice(30, -30), slice(30, -30))  # away from the border, where the ramp is cut off
    # The 300-unit ramp leaves nothing: the result is that of the blobs alone.
    alone = difference_of_gaussians(blobs, low_sigma=1.0, high_sigma=6.0)
    assert np.abs(out - alone)[inner].max() < 0.5
    assert np.abs(difference_of_gaussians(ramp((128, 128)), 1.0, 6.0))[inner].max() < 0.5
    assert min(out[c] for c in CENTRES) > 100.0  # blobs stay
    assert np.median(np.abs(out[inner][~mask[inner]])) < 5.0


def test_top_hat_removes_gradient_and_keeps_blob_heights():
    image, mask = blobs_on(ramp((128, 128)), CENTRES, radius=3.0, height=200.0)
    out = top_hat(image, radius=12)
    assert out.min() >= 0.0
    # The ramp rises 2.4 per pixel: nothing is left but a pixel's worth at the border.
    assert np.abs(out[~mask]).mean() < 0.1
    assert np.abs(out[~mask]).max() < 5.0
    heights = [out[c] for c in CENTRES]
    assert min(heights) > 185.0 and max(heights) < 201.0  # of 200


def test_top_hat_anisotropic_stack_matches_per_plane_when_z_reach_is_zero():
    image, _ = blobs_on(ramp((128, 128)), CENTRES, radius=3.0, height=200.0)
    stack = np.stack([image, image * 0.5, image * 2.0])
    # Z pixels 20x larger: a 12-pixel radius is 0.6 pixel in Z, so every plane stands alone.
    out = top_hat(stack, radius=12, pixel_size=PixelSize((4.0, 0.2, 0.2), "µm"))
    for z in range(3):
        np.testing.assert_allclose(out[z], top_hat(stack[z], radius=12), atol=1e-3)


# Both the direct path (radius <= 10) and the shrunken one; the ball must be wider than blobs.
@pytest.mark.parametrize(("radius", "blob_sigma"), [(8.0, 1.5), (40.0, 3.0)])
def test_rolling_ball_recovers_flat_background(radius, blob_sigma):
    image, mask = blobs_on(np.full((160, 160), 300.0), CENTRES, radius=blob_sigma, height=500.0)
    out = rolling_ball_background(image, radius=radius)
    background = image - out
    assert np.abs(background[~mask] - 300.0).max() < 2.0
    assert np.abs(background[mask] - 300.0).max() < 10.0  # the ball stays under the blobs
    assert min(out[c] for c in CENTRES) > 480.0


def test_rolling_ball_follows_a_gradient_and_ignores_intensity_units():
    image, mask = blobs_on(ramp((160, 160)), CENTRES, radius=3.0, height=500.0)
    out = rolling_ball_background(image, radius=40.0)
    # Of a 300-unit gradient less than 1% is left (the shrunken path's block minimum lowers
    # the background by about (shrink - 1) / 2 pixels of slope, as in ImageJ).
    assert np.abs(out[~mask]).mean() < 3.0
    assert np.abs(out[~mask]).max() < 8.0
    # The same image as floats in [0, 1] gives the same result, scaled.
    low, high = float(image.min()), float(image.max())
    scaled = rolling_ball_background((image - low) / (high - low), radius=40.0)
    np.testing.assert_allclose(scaled * (high - low), out, atol=0.5)


def test_rolling_ball_stack_is_processed_per_plane():
    image, _ = blobs_on(ramp((96, 96)), CENTRES[:3], radius=3.0, height=500.0)
    stack = np.stack([image, image[::-1]])
    out = rolling_ball_background(stack, radius=20.0)
    np.testing.assert_allclose(out[1], rolling_ball_background(image[::-1], radius=20.0))


def test_constant_image_has_no_background_left():
    flat = np.full((32, 32), 7.0, np.float32)
    assert np.all(rolling_ball_background(flat, radius=5.0) == 0.0)
    assert np.all(top_hat(flat, radius=3) == 0.0)


@pytest.mark.parametrize("func", ALL_FILTERS, ids=lambda f: f.__name__)
def test_every_filter_works_in_2d_and_3d(func):
    rng = np.random.default_rng(2)
    for shape in [(40, 48), (6, 40, 48)]:
        image = rng.random(shape).astype(np.float32) * 100
        kwargs = {"radius": 5} if func in (top_hat, rolling_ball_background) else {}
        out = func(image, **kwargs)
        assert out.shape == shape and out.dtype == np.float32
        assert np.isfinite(out).all()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda img: gaussian_blur(img, sigma=0.0), "sigma must be > 0"),
        (lambda img: gaussian_blur(img, sigma=-1.0), "sigma must be > 0"),
        (lambda img: laplace_filter(img, sigma=0.0), "sigma must be > 0"),
        (lambda img: difference_of_gaussians(img, low_sigma=0.0), "low_sigma must be > 0"),
        (lambda img: difference_of_gaussians(img, 3.0, 2.0), "must be larger than low_sigma"),
        (lambda img: median_filter(img, radius=0), "radius must be > 0"),
        (lambda img: top_hat(img, radius=0), "radius must be > 0"),
        (lambda img: top_hat(img, radius=100), "larger than the image"),
        (lambda img: rolling_ball_background(img, radius=-5.0), "radius must be > 0"),
        (lambda img: gaussian_blur(img, pixel_size=PixelSize((1.0, 1.0, 1.0), "µm")),
         "spacing has 3 values but the image has 2 axes"),
        (lambda img: gaussian_blur(img[None, None]), "must be 2D or 3D, got 4D"),
        (lambda img: sobel_edges(img[0]), "must be 2D or 3D, got 1D"),
        (lambda img: median_filter(np.where(img > 0.5, np.nan, img)), "NaN"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(call, message):
    image = np.random.default_rng(3).random((32, 32)).astype(np.float32)
    with pytest.raises(InputError, match=message):
        call(image)


def test_registry_uses_the_image_pixel_size(tmp_path):
    ws = Workspace([tmp_path], output_root=tmp_path / "out")
    impulse = np.zeros((21, 41, 41), np.float32)
    impulse[10, 20, 20] = 1.0
    meta = ImageMeta("ZYX", spacing={"Z": 1.0, "Y": 0.25, "X": 0.25}, unit="µm")
    ws.add("stack", impulse, kind="image", meta=meta)
    result = get_tool(gaussian_blur).run(ws, {"image": "stack", "sigma": 2.0})
    blurred = ws.get(result.outputs[0]).data
    assert second_moment(blurred, 0) == pytest.approx(0.5, rel=0.1)
    assert second_moment(blurred, 2) == pytest.approx(2.0, rel=0.05)
    with pytest.raises(ToolCallError, match="sigma"):
        get_tool(gaussian_blur).run(ws, {"image": "stack", "sigma": 0})
