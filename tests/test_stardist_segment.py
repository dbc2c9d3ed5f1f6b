"""The bundled StarDist2D model segments held-out synthetic and real nuclei offline."""

from __future__ import annotations

import socket
import time

import numpy as np
import pytest

from tools.errors import BiaError, InputError, ToolCallError
from tools.registry import get_tool
from tools.stardist_segment import ModelUnavailableError, load_model, stardist_segment
from tools.workspace import Workspace

# Bounds are the figures measured by evals/toolbench/stardist.py minus a margin for
# floating-point differences between machines (see the README, StarDist section).
MIN_F1_SYNTHETIC = 0.95
MIN_F1_REAL = 0.90


def _f1(truth: np.ndarray, pred: np.ndarray) -> float:
    from stardist.matching import matching

    return float(matching(truth, pred, thresh=0.5).f1)


@pytest.fixture(scope="module")
def bundled():
    return load_model("bundled")


@pytest.mark.slow
def test_bundled_model_segments_held_out_touching_nuclei(bundled):
    from tools.synthetic import nuclei_2d
    from tools.train_stardist import TEST_SEED0

    # Test seeds lie outside the training and validation seed ranges.
    data = nuclei_2d(touching=0.5, seed=TEST_SEED0 + 100)
    labels = stardist_segment(data.image)
    assert labels.shape == data.image.shape and labels.dtype == np.int32
    assert _f1(data.labels, labels) >= MIN_F1_SYNTHETIC


@pytest.mark.slow
def test_bundled_model_on_real_nuclei_image(bundled):
    from stardist.data import test_image_nuclei_2d

    image, mask = test_image_nuclei_2d(return_mask=True)
    labels = stardist_segment(image)
    assert _f1(mask, labels) >= MIN_F1_REAL


@pytest.mark.slow
def test_3d_stack_needs_slice_wise_with_a_2d_model(bundled):
    from tools.synthetic import nuclei_2d

    planes = [nuclei_2d((96, 96), n_nuclei=8, seed=s).image for s in (5, 6)]
    stack = np.stack(planes)
    with pytest.raises(InputError, match="slice_wise"):
        stardist_segment(stack)
    labels = stardist_segment(stack, slice_wise=True)
    assert labels.shape == stack.shape
    first, second = set(np.unique(labels[0])) - {0}, set(np.unique(labels[1])) - {0}
    assert first and second and not first & second  # labels unique across slices


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((2, 3, 32, 32), np.float32), "2D or 3D"),
        (np.zeros((0, 32), np.float32), "empty"),
        (np.full((64, 64), 7.0, np.float32), "constant"),
        (np.array([[1.0, np.nan], [0.0, 2.0]]), "NaN"),
    ],
)
def test_bad_images_are_refused_before_loading_a_model(image, message):
    with pytest.raises(InputError, match=message):
        stardist_segment(image)


def test_unknown_model_name_is_refused():
    image = np.random.default_rng(0).random((32, 32)).astype(np.float32)
    with pytest.raises(InputError, match="unknown StarDist model"):
        stardist_segment(image, model="2D_versatile_flou")
    # Through the registry the Literal already refuses it, naming the choices.
    with pytest.raises(ToolCallError, match="bundled"):
        get_tool("stardist_segment").validate({"image": "img", "model": "cellpose"})


def test_missing_model_folder_is_a_clear_error(tmp_path):
    image = np.random.default_rng(0).random((32, 32)).astype(np.float32)
    with pytest.raises(ModelUnavailableError, match=r"config\.json"):
        stardist_segment(image, model_dir=str(tmp_path))


def test_pretrained_model_offline_points_to_the_bundled_model(monkeypatch, tmp_path):
    """The real download path (stardist -> csbdeep -> keras get_file) fails fast offline.

    Name resolution is made to fail as on a machine without network, and Keras' cache is
    pointed at an empty folder, so the test behaves the same with or without internet and
    whether or not the model was downloaded before.
    """
    import csbdeep.models.pretrained as pretrained

    real_get_file = pretrained.get_file

    def get_file_in_empty_cache(*args, **kwargs):
        return real_get_file(*args, cache_dir=str(tmp_path), **kwargs)

    def no_dns(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(pretrained, "get_file", get_file_in_empty_cache)
    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    image = np.random.default_rng(0).random((32, 32)).astype(np.float32)
    t0 = time.perf_counter()
    with pytest.raises(ModelUnavailableError, match="model='bundled'") as info:
        stardist_segment(image, model="2D_versatile_fluo")
    assert time.perf_counter() - t0 < 20
    assert isinstance(info.value, BiaError)
    assert "offline" in str(info.value)


@pytest.mark.slow
def test_runs_through_the_registry_and_workspace(bundled, tmp_path):
    from tools.synthetic import nuclei_2d

    data = nuclei_2d((128, 128), n_nuclei=12, seed=7)
    ws = Workspace([tmp_path], output_root=tmp_path / "out")
    ws.add("nuclei", data.image, kind="image")
    result = get_tool("stardist_segment").run(ws, {"image": "nuclei", "prob_thresh": 0.5})
    labels = ws.get(result.outputs[0]).data
    assert labels.shape == (128, 128)
    assert 8 <= labels.max() <= 16


@pytest.mark.slow
def test_big_images_are_predicted_block_by_block(bundled, monkeypatch):
    """The predict_instances_big path, with the block size shrunk to keep the test small."""
    import tools.stardist_segment as sd
    from tools.synthetic import nuclei_2d

    data = nuclei_2d((256, 256), n_nuclei=40, touching=0.3, seed=11)
    whole = stardist_segment(data.image)
    monkeypatch.setattr(sd, "BIG_IMAGE_PIXELS", 128 * 128)
    monkeypatch.setattr(sd, "BLOCK_SIZE", 128)
    monkeypatch.setattr(sd, "BLOCK_OVERLAP", 32)
    blocks = stardist_segment(data.image)
    assert blocks.shape == whole.shape and blocks.dtype == np.int32
    assert _f1(whole, blocks) >= 0.95
    assert _f1(data.labels, blocks) >= MIN_F1_SYNTHETIC


def test_training_data_are_seeded_held_out_and_augmented_consistently():
    from tools.train_stardist import (
        TEST_SEED0,
        TRAIN_SEED0,
        VAL_SEED0,
        augment,
        synthetic_pair,
    )

    image, labels = synthetic_pair(TRAIN_SEED0)
    again, labels_again = synthetic_pair(TRAIN_SEED0)
    np.testing.assert_array_equal(image, again)
    np.testing.assert_array_equal(labels, labels_again)
    assert TRAIN_SEED0 + 1000 <= VAL_SEED0 and VAL_SEED0 + 1000 <= TEST_SEED0
    # Geometric augmentation moves image and labels together: the label mask still covers
    # the bright pixels after any flip or rotation.
    np.random.seed(0)
    for _ in range(4):
        x, y = augment(image, labels)
        assert x.shape == image.shape and y.shape == labels.shape
        assert np.array_equal(np.unique(y), np.unique(labels))
        assert x[y > 0].mean() > x[y == 0].mean() + 0.1


@pytest.mark.slow
def test_library_chatter_never_reaches_stdout_or_stderr(capfd, caplog):
    import logging

    load_model.cache_clear()  # load again: "Loading network weights ..." is printed on load
    from tools.synthetic import nuclei_2d
    from tools.train_stardist import TEST_SEED0

    data = nuclei_2d((128, 128), n_nuclei=10, seed=TEST_SEED0 + 7)
    with caplog.at_level(logging.DEBUG, logger="tools.stardist_segment"):
        labels = stardist_segment(data.image)
    out, err = capfd.readouterr()
    assert labels.max() > 0
    assert out == "" and err == "", (out, err)
    # The chatter was kept, at debug level, for whoever wants it.
    assert any("weights" in r.getMessage().lower() for r in caplog.records)


@pytest.mark.slow
@pytest.mark.parametrize("radius", [3, 24])
def test_objects_far_from_the_training_size_are_rescaled(bundled, radius):
    from evals.toolbench.scale import discs_2d
    from tools.choices import collect_choices

    image, truth = discs_2d(radius, seed=6)
    with collect_choices() as chosen:
        labels = stardist_segment(image)
    assert labels.shape == image.shape  # labels mapped back to the input's shape
    assert chosen["scale"]["value"] != 1.0
    # With the model's own input size, 24-px discs gave 22 objects for 16.
    assert abs(len(np.unique(labels[labels > 0])) - truth.max()) <= 0.05 * truth.max()
    assert _f1(truth, labels) >= 0.9


@pytest.mark.slow
def test_a_fresh_process_prints_nothing_but_its_answer():
    # TensorFlow's start-up lines come from C++ on import, once per process: only a fresh
    # process shows whether they reach the terminal.
    import subprocess
    import sys

    code = (
        "from tools.synthetic import nuclei_2d\n"
        "from tools.stardist_segment import stardist_segment\n"
        "d = nuclei_2d((96, 96), n_nuclei=6, seed=3007)\n"
        "print(int(stardist_segment(d.image).max() > 0))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "1\n"
    assert done.stderr == "", done.stderr
