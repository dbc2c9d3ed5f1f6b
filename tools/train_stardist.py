"""Train the small StarDist2D model bundled with bia, on synthetic nuclei only.

Pretrained StarDist weights are downloaded from GitHub on first use, which an offline
installation cannot do. This script trains a small StarDist2D on :func:`tools.synthetic.nuclei_2d`
images, each drawn with its own random size, density, clumping, brightness spread, texture, blur,
background and noise, so that the model sees the variety of real nuclear stains rather than one
look. Training patches are further augmented (flips, right-angle rotations, intensity scaling,
offset, gamma, extra noise). No real image is used, for training or for choosing thresholds.

Run it from the repository root::

    python -m tools.train_stardist                      # the bundled model (about 25 min, 2 CPUs)
    python -m tools.train_stardist --epochs 5 --out /tmp/sd_try   # a quick trial

The result is a StarDist model folder (``config.json``, ``thresholds.json``,
``weights_best.h5``) plus ``training.json`` with the recipe, the seeds and the checksum of the
generator, so the run can be repeated. With the same seed, generator and library versions the
training data are identical; the weights agree up to floating-point reordering in TensorFlow's
multi-threaded kernels.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from tools.errors import InputError

MODEL_NAME = "stardist2d_bia"
MODELS_DIR = Path(__file__).resolve().parent / "models"
TILE = (256, 256)
PATCH = (128, 128)

# Seeds of the training, validation and evaluation images are disjoint ranges, so held-out
# images are never seen in training.
TRAIN_SEED0 = 1_000
VAL_SEED0 = 2_000
TEST_SEED0 = 3_000


def sample_nuclei_params(rng: np.random.Generator, shape: tuple[int, int] = TILE) -> dict:
    """Draw the settings of one synthetic training image.

    The ranges bracket what a 20-40x widefield nuclear stain shows: mean radii of 5-17 pixels
    (stardist's real test image has a median of about 12), 10-35% of the field covered, from
    isolated nuclei to dense clumps, weak to strong blur and noise.
    """
    r_lo = rng.uniform(5.0, 12.0)
    r_hi = min(r_lo + rng.uniform(2.0, 5.0), 17.0)
    r_mean = 0.5 * (r_lo + r_hi)
    coverage = rng.uniform(0.10, 0.35)
    n = round(coverage * shape[0] * shape[1] / (np.pi * r_mean**2))
    return {
        "shape": shape,
        "n_nuclei": int(np.clip(n, 5, 400)),
        "radius": (float(r_lo), float(r_hi)),
        "touching": float(rng.uniform(0.1, 0.6)),
        "aspect": (float(rng.uniform(0.35, 0.55)), float(rng.uniform(0.8, 0.95))),
        "irregularity": float(rng.uniform(0.02, 0.1)),
        "brightness_range": float(rng.uniform(1.5, 6.0)),
        "texture": float(rng.uniform(0.3, 1.5)),
        "mitotic": float(rng.uniform(0.0, 0.12)),
        "out_of_focus": int(rng.integers(0, 6)),
        "background": float(rng.uniform(0.02, 0.2)),
        "blur": float(rng.uniform(0.5, 2.5)),
        "noise": float(rng.uniform(0.01, 0.12)),
    }


def synthetic_pair(seed: int, shape: tuple[int, int] = TILE) -> tuple[np.ndarray, np.ndarray]:
    """One randomised synthetic nuclei image (raw float32) with its labels, from ``seed``."""
    from tools import synthetic

    rng = np.random.default_rng(seed)
    params = sample_nuclei_params(rng, shape)
    # Dense settings can fail to place every nucleus; fewer nuclei are then drawn.
    for _ in range(5):
        try:
            result = synthetic.nuclei_2d(**params, seed=seed)
            return result.image, result.labels
        except InputError:
            params["n_nuclei"] = max(5, int(params["n_nuclei"] * 0.8))
    raise RuntimeError(f"could not generate a synthetic image for seed {seed}")


def normalize_image(image: np.ndarray) -> np.ndarray:
    """Percentile normalisation (1-99.8) used in training and at prediction time alike."""
    from csbdeep.utils import normalize

    return normalize(image, 1, 99.8, axis=None).astype(np.float32)


def make_dataset(
    n: int, seed0: int, shape: tuple[int, int] = TILE, progress: bool = True
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """``n`` normalised images and their labels, seeds ``seed0 .. seed0 + n - 1``."""
    from tqdm import tqdm

    images, labels = [], []
    for seed in tqdm(range(seed0, seed0 + n), desc="synthetic images", disable=not progress):
        image, lab = synthetic_pair(seed, shape)
        images.append(normalize_image(image))
        labels.append(lab)
    return images, labels


def augment(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Random flips, right-angle rotations and photometric changes of one training patch.

    StarDist calls this on every patch; it draws from numpy's global generator, which
    :func:`train` seeds.
    """
    k = np.random.randint(4)
    x, y = np.rot90(x, k), np.rot90(y, k)
    for axis in (0, 1):
        if np.random.rand() < 0.5:
            x, y = np.flip(x, axis), np.flip(y, axis)
    # Photometric changes act on the image only: contrast, offset, gamma, extra noise.
    x = x * np.random.uniform(0.7, 1.4) + np.random.uniform(-0.1, 0.1)
    if np.random.rand() < 0.5:
        gamma = np.random.uniform(0.7, 1.4)
        x = np.sign(x) * np.abs(x) ** gamma
    if np.random.rand() < 0.5:
        x = x + np.random.normal(0, np.random.uniform(0.0, 0.06), x.shape)
    return np.ascontiguousarray(x, dtype=np.float32), np.ascontiguousarray(y)


def _seed_everything(seed: int) -> None:
    import tensorflow as tf

    random.seed(seed)
    np.random.seed(seed)
    tf.random.set_seed(seed)


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def f1_on_real_image(model: object) -> dict:
    """Score ``model`` on stardist's real nuclei image (for reporting only, never for tuning)."""
    from stardist.data import test_image_nuclei_2d
    from stardist.matching import matching

    image, mask = test_image_nuclei_2d(return_mask=True)
    pred, _ = model.predict_instances(normalize_image(image), show_tile_progress=False)
    m = matching(mask, pred, thresh=0.5)
    return {"f1": m.f1, "precision": m.precision, "recall": m.recall, "n_pred": m.n_pred}


def train(
    out: Path,
    *,
    epochs: int = 60,
    steps_per_epoch: int = 50,
    n_train: int = 128,
    n_val: int = 5,
    learning_rate: float = 1e-3,
    seed: int = 0,
    report_real: bool = True,
) -> dict:
    """Train, optimise thresholds on synthetic validation images, and save the model folder.

    Parameters
    ----------
    out : Path
        Model folder to create (its parent is the StarDist ``basedir``, its name the model
        name). An existing folder is replaced.
    epochs, steps_per_epoch : int
        Training length; an epoch is ``steps_per_epoch`` batches of 4 patches of 128x128.
    n_train, n_val : int
        Number of 256x256 synthetic images for training and for validation (loss monitoring
        and probability/NMS threshold optimisation).
    learning_rate : float
        Initial Adam learning rate (StarDist halves it when the validation loss stalls).
    seed : int
        Seed of numpy, Python and TensorFlow; the images have their own fixed seed ranges.
    report_real : bool
        Also score the finished model on stardist's real test image (reported, not used).

    Returns
    -------
    dict
        The recipe, timings and scores, also written to ``out / "training.json"``.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from stardist.models import Config2D, StarDist2D

    t0 = time.perf_counter()
    _seed_everything(seed)
    x_train, y_train = make_dataset(n_train, TRAIN_SEED0)
    x_val, y_val = make_dataset(n_val, VAL_SEED0)
    t_data = time.perf_counter() - t0

    config = Config2D(
        n_rays=32,
        grid=(2, 2),
        n_channel_in=1,
        unet_n_depth=3,
        train_patch_size=PATCH,
        train_batch_size=4,
        train_epochs=epochs,
        train_steps_per_epoch=steps_per_epoch,
        train_learning_rate=learning_rate,
        train_tensorboard=False,
        use_gpu=False,
    )
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    model = StarDist2D(config, name=out.name, basedir=str(out.parent))
    t1 = time.perf_counter()
    history = model.train(
        x_train, y_train, validation_data=(x_val, y_val), augmenter=augment, seed=seed
    )
    t_train = time.perf_counter() - t1
    t2 = time.perf_counter()
    thresholds = model.optimize_thresholds(x_val, y_val)
    t_thresh = time.perf_counter() - t2

    # Keep only what prediction needs: the best weights (by validation loss) and the JSONs.
    for extra in ("weights_last.h5", "weights_now.h5", "logs"):
        path = out / extra
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()

    synthetic_py = Path(__file__).resolve().parent / "synthetic.py"
    record = {
        "model": out.name,
        "seed": seed,
        "epochs": epochs,
        "steps_per_epoch": steps_per_epoch,
        "batch_size": 4,
        "learning_rate": learning_rate,
        "patch_size": list(PATCH),
        "n_train": n_train,
        "train_seeds": [TRAIN_SEED0, TRAIN_SEED0 + n_train - 1],
        "n_val": n_val,
        "val_seeds": [VAL_SEED0, VAL_SEED0 + n_val - 1],
        "image_shape": list(TILE),
        "normalisation": "csbdeep.utils.normalize(image, 1, 99.8)",
        "augmentation": "rot90, flips, scale 0.7-1.4, offset +-0.1, gamma 0.7-1.4, noise <=0.06",
        "thresholds": {k: float(v) for k, v in thresholds.items()},
        "final_loss": float(history.history["loss"][-1]),
        "final_val_loss": float(history.history["val_loss"][-1]),
        "seconds": {"data": t_data, "train": t_train, "thresholds": t_thresh},
        "synthetic_py_sha256": _file_sha256(synthetic_py),
        "versions": _versions(),
    }
    if report_real:
        best = StarDist2D(None, name=out.name, basedir=str(out.parent))
        record["real_image_f1_at_0.5"] = f1_on_real_image(best)
    (out / "training.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    return {p: version(p) for p in ("stardist", "csbdeep", "tensorflow-cpu", "keras", "numpy")}


def main(argv: list[str] | None = None) -> int:
    """Command line entry point: ``python -m tools.train_stardist [--epochs N] [--out DIR]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=MODELS_DIR / MODEL_NAME)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--steps", type=int, default=50, help="steps per epoch")
    parser.add_argument("--n-train", type=int, default=128)
    parser.add_argument("--n-val", type=int, default=5)
    parser.add_argument("--lr", type=float, default=1e-3, help="initial learning rate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-real", action="store_true", help="skip the real-image score")
    args = parser.parse_args(argv)
    record = train(
        args.out,
        epochs=args.epochs,
        steps_per_epoch=args.steps,
        n_train=args.n_train,
        n_val=args.n_val,
        learning_rate=args.lr,
        seed=args.seed,
        report_real=not args.no_real,
    )
    print(json.dumps(record, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
