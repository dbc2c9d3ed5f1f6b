"""Denoisers improve synthetic noisy images against their clean ground truth."""

from __future__ import annotations

import json

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from tools._n2v import blind_spot_mask, random_patches
from tools.denoise import (
    _auto_candidates,
    _robust_range,
    apply_care_model,
    choose_denoiser,
    denoise_auto,
    denoise_bilateral,
    denoise_n2v,
    denoise_nlm,
    denoise_tv,
    denoise_wavelet,
)
from tools.errors import InputError, PathNotAllowedError
from tools.registry import get_tool
from tools.synthetic import noisy_clean_pair
from tools.workspace import Workspace


def psnr(clean: np.ndarray, image: np.ndarray) -> float:
    return float(peak_signal_noise_ratio(clean, image, data_range=1.0))


@pytest.fixture(scope="module")
def pair_2d():
    return noisy_clean_pair((128, 128), photons=20.0, seed=3)


@pytest.fixture(scope="module")
def pair_3d():
    return noisy_clean_pair((12, 64, 64), photons=20.0, seed=4)


@pytest.mark.parametrize(
    "denoise", [denoise_nlm, denoise_tv, denoise_bilateral, denoise_wavelet],
    ids=lambda f: f.__name__,
)
def test_each_denoiser_improves_psnr_and_ssim(pair_2d, denoise):
    clean, noisy = pair_2d.clean, pair_2d.noisy
    out = denoise(noisy)
    assert out.shape == noisy.shape and out.dtype == np.float32
    assert psnr(clean, out) > psnr(clean, noisy) + 4.0
    ssim_noisy = structural_similarity(clean, noisy, data_range=1.0)
    assert structural_similarity(clean, out, data_range=1.0) > ssim_noisy + 0.2


@pytest.mark.parametrize("denoise", [denoise_tv, denoise_wavelet], ids=lambda f: f.__name__)
def test_denoisers_work_on_stacks(pair_3d, denoise):
    out = denoise(pair_3d.noisy)
    assert out.shape == pair_3d.noisy.shape
    assert psnr(pair_3d.clean, out) > psnr(pair_3d.clean, pair_3d.noisy) + 4.0


def test_denoisers_keep_intensity_units(pair_2d):
    # The same image in 16-bit-like units gives the same result in those units.
    scaled = pair_2d.noisy * 4000.0 + 100.0
    for denoise in (denoise_tv, denoise_wavelet, denoise_bilateral):
        np.testing.assert_allclose(
            denoise(scaled), denoise(pair_2d.noisy) * 4000.0 + 100.0, rtol=0, atol=4.0
        )


def test_stronger_tv_is_smoother(pair_2d):
    weak, strong = denoise_tv(pair_2d.noisy, weight=0.02), denoise_tv(pair_2d.noisy, weight=0.5)
    assert np.abs(np.diff(strong)).mean() < np.abs(np.diff(weak)).mean() / 2


def test_choose_denoiser_picks_a_good_candidate_without_the_clean_image(pair_2d):
    clean, noisy = pair_2d.clean, pair_2d.noisy
    choice = choose_denoiser(noisy)
    assert {c["method"] for c in choice["candidates"]} == {"gaussian", "tv", "wavelet", "nlm"}
    # Score every candidate against the clean image, which calibration never saw.
    low, high = _robust_range(noisy)
    scaled = (noisy - low) / (high - low)
    sigma = choice["noise_sigma_estimate"] / (high - low)
    scores = {}
    for c in choice["candidates"]:
        function, _ = _auto_candidates(scaled, [c["method"]], sigma)[c["method"]]
        restored = function(scaled, **c["parameters"]) * (high - low) + low
        scores[(c["method"], json.dumps(c["parameters"]))] = psnr(clean, restored)
    chosen = scores[(choice["method"], json.dumps(choice["parameters"]))]
    assert chosen > psnr(clean, noisy) + 6.0
    assert chosen >= min(scores.values())
    assert chosen >= max(scores.values()) - 1.0  # within 1 dB of the best in hindsight


def test_denoise_auto_reports_its_choice_through_the_registry(tmp_path, pair_2d):
    ws = Workspace([tmp_path], output_root=tmp_path / "out")
    ws.add("noisy", pair_2d.noisy, kind="image")
    result = get_tool(denoise_auto).run(ws, {"image": "noisy", "methods": ["tv", "gaussian"]})
    assert result.value["method"] in ("tv", "gaussian")
    assert len(result.value["candidates"]) == 8
    restored = ws.get(result.outputs[0]).data
    assert psnr(pair_2d.clean, restored) > psnr(pair_2d.clean, pair_2d.noisy) + 6.0


def test_denoise_auto_on_a_stack(pair_3d):
    out, choice = denoise_auto(pair_3d.noisy, methods=["gaussian", "tv", "nlm"])
    assert choice["method"] in ("gaussian", "tv", "nlm")
    assert psnr(pair_3d.clean, out) > psnr(pair_3d.clean, pair_3d.noisy) + 4.0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda img: denoise_tv(img, weight=0.0), "weight must be > 0"),
        (lambda img: denoise_bilateral(img, sigma_spatial=-1.0), "sigma_spatial must be > 0"),
        (lambda img: denoise_bilateral(np.stack([img, img])), "must be 2D, got 3D"),
        (lambda img: denoise_wavelet(img, noise_sigma=0.0), "noise_sigma must be > 0"),
        (lambda img: denoise_auto(img, methods=[]), "methods is empty"),
        (lambda img: denoise_auto(img, methods=["magic"]), "unknown denoising method"),
        (lambda img: denoise_auto(np.stack([img] * 4), methods=["bilateral"]), "2D images only"),
        (lambda img: denoise_tv(img[None, None]), "must be 2D or 3D, got 4D"),
        (lambda img: denoise_n2v(img, mask_fraction=0.6), "mask_fraction"),
        (lambda img: denoise_n2v(img[:4, :4]), "too small"),
        (lambda img: denoise_n2v(img, save_model="/tmp/.."), "must name a new folder"),
        (lambda img: apply_care_model(img, "/nonexistent/model"), "not a CARE model folder"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(call, message):
    image = np.random.default_rng(5).random((32, 32)).astype(np.float32)
    with pytest.raises(InputError, match=message):
        call(image)


def test_blind_spot_mask_hides_the_requested_fraction_with_neighbour_values():
    rng = np.random.default_rng(0)
    patches = rng.random((8, 64, 64)).astype(np.float32)
    masked, mask = blind_spot_mask(patches, fraction=0.02, neighbourhood=2, rng=rng)
    assert 0.015 < mask.mean() < 0.025
    changed = masked != patches
    assert not (changed & (mask == 0)).any()  # only blind spots are touched
    for n, y, x in np.argwhere(mask == 1)[:200]:
        window = patches[n, max(0, y - 2) : y + 3, max(0, x - 2) : x + 3]
        assert masked[n, y, x] in window
    # A pixel never keeps its own value (values are continuous, so equality means itself).
    assert changed[mask == 1].mean() > 0.999
    stack = rng.random((2, 16, 32, 32)).astype(np.float32)
    _, mask3 = blind_spot_mask(stack, fraction=0.02, neighbourhood=1, rng=rng)
    assert 0.01 < mask3.mean() < 0.04


def test_random_patches_have_the_requested_shape():
    image = np.arange(40 * 50, dtype=np.float32).reshape(40, 50)
    patches = random_patches(image, 5, (16, 16), np.random.default_rng(0))
    assert patches.shape == (5, 16, 16)
    assert set(np.unique(patches)) <= set(image.ravel())


@pytest.fixture(scope="module")
def n2v_run(tmp_path_factory):
    """One tiny blind-spot training shared by the slow tests (about 20 s on 2 cores)."""
    pair = noisy_clean_pair((96, 96), photons=20.0, seed=1)
    folder = tmp_path_factory.mktemp("models")
    out = denoise_n2v(
        pair.noisy, epochs=4, steps_per_epoch=10, batch_size=8, patch_size=32, depth=1,
        save_model=str(folder / "tiny"),
    )
    return pair, out, folder / "tiny"


@pytest.mark.slow
def test_n2v_improves_psnr_and_saves_a_care_model(n2v_run):
    pair, out, model_dir = n2v_run
    assert out.shape == pair.noisy.shape and out.dtype == np.float32
    assert psnr(pair.clean, out) > psnr(pair.clean, pair.noisy) + 4.0
    assert (model_dir / "config.json").is_file() and (model_dir / "weights_best.h5").is_file()
    record = json.loads((model_dir / "blind_spot_training.json").read_text())
    assert len(record["epoch_losses"]) == 4


@pytest.mark.slow
@pytest.mark.slow
def test_n2v_saves_its_model_in_the_session_folder_through_the_registry(tmp_path):
    ws = Workspace([tmp_path], output_root=tmp_path / "out")
    ws.add("noisy", noisy_clean_pair((32, 32), photons=20.0, seed=2).noisy, kind="image")
    args = {"image": "noisy", "epochs": 1, "steps_per_epoch": 2, "batch_size": 2,
            "patch_size": 16, "depth": 1, "save_model": "my_n2v"}
    get_tool(denoise_n2v).run(ws, args)
    assert (ws.session_dir / "my_n2v" / "config.json").is_file()
    with pytest.raises(PathNotAllowedError):
        get_tool(denoise_n2v).run(ws, {**args, "save_model": "../escape"})


@pytest.mark.slow
def test_apply_care_model_reproduces_the_saved_model(n2v_run):
    pair, out, model_dir = n2v_run
    again = apply_care_model(pair.noisy, str(model_dir))
    np.testing.assert_allclose(again, out, atol=1e-5)
    tiled = apply_care_model(pair.noisy, str(model_dir), n_tiles=[2, 2])
    assert np.abs(tiled - out).mean() < 0.01  # tiles overlap, so results nearly agree
    with pytest.raises(InputError, match="expects 2D images"):
        apply_care_model(np.stack([pair.noisy] * 4), str(model_dir))
    with pytest.raises(InputError, match="n_tiles needs one value per axis"):
        apply_care_model(pair.noisy, str(model_dir), n_tiles=[2])
