"""Noise2Void-style blind-spot training on one image, with csbdeep's CARE U-Net and Keras 3.

Noise2Void (Krull et al., CVPR 2019) trains a denoiser on the noisy image itself: in every
training patch a few pixels are replaced by a random neighbour, and the loss is computed only
at those pixels. The network cannot copy a pixel it never sees, so it learns to predict each
pixel from its surroundings, which recovers the signal when the noise is independent from pixel
to pixel. Written here because the ``n2v`` package pins csbdeep 0.7.4, which breaks stardist.

The model is a plain :class:`csbdeep.models.CARE` network, saved as a CARE model folder
(``config.json`` + ``weights_best.h5``), so a saved blind-spot model can be applied again with
``apply_care_model``. Images are normalised as CARE's default ``PercentileNormalizer`` does
(2nd and 99.8th percentiles), so prediction through ``CARE.predict`` matches training.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

PERCENTILES = (2.0, 99.8)
"""Normalisation percentiles, those of csbdeep's default ``PercentileNormalizer``."""


@dataclass(frozen=True)
class BlindSpotConfig:
    """Size of the network and of the training run.

    Attributes
    ----------
    patch_size : int
        Side of the square training patches in 2D; 3D patches are cubes of half this side.
        Both are capped by the image.
    epochs, steps_per_epoch, batch_size : int
        Training length: ``epochs * steps_per_epoch`` gradient steps on ``batch_size`` patches.
    depth, n_first, kernel_size : int
        U-Net resolution levels, filters in the first level, convolution kernel side.
    mask_fraction : float
        Fraction of the pixels of a patch that are masked (blind spots).
    neighbourhood : int
        A masked pixel takes the value of a random pixel at most this far away.
    learning_rate : float
        Adam learning rate.
    seed : int
        Seed of patch sampling, masking and weight initialisation.
    """

    patch_size: int = 64
    epochs: int = 10
    steps_per_epoch: int = 30
    batch_size: int = 16
    depth: int = 2
    n_first: int = 16
    kernel_size: int = 3
    mask_fraction: float = 0.02
    neighbourhood: int = 2
    learning_rate: float = 0.001
    seed: int = 0


def percentile_normalize(image: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Image scaled so its 2nd and 99.8th percentiles become 0 and 1, with those percentiles."""
    low, high = (float(v) for v in np.percentile(image, PERCENTILES))
    span = high - low if high > low else 1.0
    return ((image - low) / span).astype(np.float32), low, high


def random_patches(
    image: np.ndarray, count: int, shape: tuple[int, ...], rng: np.random.Generator
) -> np.ndarray:
    """``count`` random patches of ``shape``, randomly flipped and rotated in the YX plane."""
    starts = [
        rng.integers(0, s - p + 1, size=count) for s, p in zip(image.shape, shape, strict=True)
    ]
    patches = np.empty((count, *shape), dtype=np.float32)
    for i in range(count):
        window = tuple(slice(st[i], st[i] + p) for st, p in zip(starts, shape, strict=True))
        patch = image[window]
        if shape[-1] == shape[-2]:
            patch = np.rot90(patch, k=int(rng.integers(4)), axes=(-2, -1))
        if rng.random() < 0.5:
            patch = patch[..., ::-1]
        patches[i] = patch
    return patches


def blind_spot_mask(
    patches: np.ndarray, fraction: float, neighbourhood: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Replace a stratified random ``fraction`` of each patch's pixels by a random neighbour.

    The patch is divided into boxes of about ``1 / fraction`` pixels and one pixel is drawn
    in every box, so blind spots cover the patch evenly. Each takes the value of a pixel drawn
    uniformly from the ``(2 * neighbourhood + 1)``-wide window around it, never itself.

    Parameters
    ----------
    patches : ndarray
        ``(N, *spatial)`` float patches.
    fraction : float
        Fraction of pixels to mask, in (0, 0.5].
    neighbourhood : int
        Half-width of the window the replacement value is drawn from, >= 1.
    rng : numpy.random.Generator
        Random generator.

    Returns
    -------
    masked : ndarray
        The patches with blind spots filled by neighbours (the network input).
    mask : ndarray
        1.0 at blind spots, 0.0 elsewhere (where the loss is computed).
    """
    n, *spatial = patches.shape
    ndim = len(spatial)
    box = max(2, round((1.0 / fraction) ** (1.0 / ndim)))
    grids = np.meshgrid(*[np.arange(0, s, box) for s in spatial], indexing="ij")
    origins = np.stack([g.ravel() for g in grids], axis=-1)  # (boxes, ndim)
    coords = origins[None] + rng.integers(0, box, size=(n, len(origins), ndim))
    inside = np.all(coords < np.asarray(spatial), axis=-1)
    sample = np.repeat(np.arange(n), len(origins))[inside.ravel()]
    coords = coords[inside]
    # Offsets drawn from the window without its centre, so a pixel never replaces itself.
    window = np.stack(
        np.meshgrid(*[np.arange(-neighbourhood, neighbourhood + 1)] * ndim, indexing="ij"), -1
    ).reshape(-1, ndim)
    window = window[np.any(window != 0, axis=1)]
    source = coords + window[rng.integers(0, len(window), size=len(coords))]
    source = np.clip(source, 0, np.asarray(spatial) - 1)
    # A clipped source at the border can land back on the pixel itself: mirror it inward.
    same = np.all(source == coords, axis=1)
    source[same] = np.clip(coords[same] - window[0], 0, np.asarray(spatial) - 1)
    masked = patches.copy()
    mask = np.zeros_like(patches)
    target_index = (sample, *coords.T)
    masked[target_index] = patches[(sample, *source.T)]
    mask[target_index] = 1.0
    return masked, mask


def masked_mse(y_true: Any, y_pred: Any) -> Any:
    """Mean squared error over blind spots only; ``y_true`` holds (target, mask) channels."""
    from keras import ops

    target, mask = y_true[..., :1], y_true[..., 1:]
    return ops.sum(mask * ops.square(target - y_pred)) / ops.maximum(ops.sum(mask), 1.0)


def quiet_tensorflow() -> None:
    """Silence TensorFlow's C++ start-up logging unless the user asked for it."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def build_care(
    axes: str, config: BlindSpotConfig, name: str | None, basedir: Path | None
) -> Any:
    """An untrained CARE network (non-residual U-Net) for a blind-spot run."""
    quiet_tensorflow()
    import keras
    from csbdeep.models import CARE, Config

    keras.utils.set_random_seed(config.seed)
    care_config = Config(
        axes,
        n_channel_in=1,
        n_channel_out=1,
        unet_residual=False,
        unet_n_depth=config.depth,
        unet_n_first=config.n_first,
        unet_kern_size=config.kernel_size,
        train_learning_rate=config.learning_rate,
        train_batch_size=config.batch_size,
        train_epochs=config.epochs,
        train_steps_per_epoch=config.steps_per_epoch,
        train_tensorboard=False,
    )
    with contextlib.redirect_stdout(io.StringIO()):  # csbdeep prints on model creation
        return CARE(care_config, name=name, basedir=None if basedir is None else str(basedir))


def train_blind_spot(
    image: np.ndarray,
    config: BlindSpotConfig,
    *,
    save_dir: Path | None = None,
    name: str = "n2v",
    progress: bool = True,
) -> tuple[Any, list[float]]:
    """Train a CARE U-Net on ``image`` with the blind-spot loss.

    Parameters
    ----------
    image : ndarray
        2D or 3D noisy image, float.
    config : BlindSpotConfig
        Network and training settings.
    save_dir : Path, optional
        Folder under which the model folder ``name`` is written (CARE layout); nothing is
        written when None.
    name : str
        Name of the model folder.
    progress : bool
        Show a progress bar over epochs with the loss.

    Returns
    -------
    model : csbdeep.models.CARE
        The trained model.
    losses : list of float
        Mean blind-spot loss of each epoch.
    """
    import keras
    from tqdm.auto import tqdm

    axes = "YX" if image.ndim == 2 else "ZYX"
    model = build_care(axes, config, name if save_dir else None, save_dir)
    normalized, low, high = percentile_normalize(image)
    # 3D patches are half as wide per axis: 32**3 voxels cost about as much as 64**2 x 8.
    side = config.patch_size if image.ndim == 2 else max(4, config.patch_size // 2)
    shape = tuple(min(side, s) for s in image.shape)
    # The U-Net halves each axis ``depth`` times: crop patches to a multiple of 2**depth.
    div = 2**config.depth
    shape = tuple(max(div, s - s % div) for s in shape)
    if any(p > s for p, s in zip(shape, image.shape, strict=True)):
        padding = [(0, max(0, p - s)) for p, s in zip(shape, image.shape, strict=True)]
        normalized = np.pad(normalized, padding, mode="reflect")
    rng = np.random.default_rng(config.seed)
    model.keras_model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=config.learning_rate), loss=masked_mse
    )
    losses: list[float] = []
    epochs = tqdm(
        range(config.epochs), desc="Noise2Void training", unit="epoch", disable=not progress
    )
    for _ in epochs:
        patches = random_patches(normalized, config.steps_per_epoch * config.batch_size, shape, rng)
        inputs, mask = blind_spot_mask(patches, config.mask_fraction, config.neighbourhood, rng)
        targets = np.stack([patches, mask], axis=-1)
        history = model.keras_model.fit(
            inputs[..., None], targets, batch_size=config.batch_size, epochs=1, verbose=0,
            shuffle=False,
        )
        losses.append(float(history.history["loss"][-1]))
        epochs.set_postfix(loss=f"{losses[-1]:.4g}")
    if save_dir is not None:
        model.keras_model.save_weights(str(model.logdir / "weights_best.h5"))
        record = {
            "method": "Noise2Void-style blind-spot training on the image itself",
            "config": asdict(config),
            "normalization_percentiles": list(PERCENTILES),
            "normalization_values": [low, high],
            "image_shape": list(image.shape),
            "epoch_losses": losses,
        }
        (model.logdir / "blind_spot_training.json").write_text(json.dumps(record, indent=2))
    return model, losses


def predict_care(model: Any, image: np.ndarray, axes: str) -> np.ndarray:
    """Apply a CARE model to a whole image with percentile normalisation, quietly."""
    from csbdeep.data import PadAndCropResizer, PercentileNormalizer

    with contextlib.redirect_stdout(io.StringIO()):
        restored = model.predict(
            image.astype(np.float32, copy=False),
            axes,
            normalizer=PercentileNormalizer(*PERCENTILES),
            resizer=PadAndCropResizer(),
        )
    return np.asarray(restored, dtype=np.float32)
