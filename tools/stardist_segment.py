"""StarDist: deep-learning instance segmentation of star-convex objects such as nuclei.

The default model is bia's own small StarDist2D, trained on synthetic nuclei by
:mod:`tools.train_stardist` and shipped in ``tools/models/stardist2d_bia``, so segmentation works
offline. StarDist's published ``2D_versatile_fluo`` model is downloaded from GitHub on first use
(then cached by Keras in ``~/.keras/models``); without network that fails with a
:class:`ModelUnavailableError` that points back to the bundled model. Any StarDist model folder
(2D or 3D) trained elsewhere can be given with ``model_dir``.

TensorFlow and StarDist are imported only when a model is first loaded; loaded models are kept
for the rest of the session.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import logging
import os
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from annotated_types import Gt, Lt

from tools.checks import check_image
from tools.choices import record_choice
from tools.errors import BiaError, InputError
from tools.registry import tool
from tools.scale import ObjectScale, describe, radius_from_image
from tools.types import Image, InputPath, Labels

logger = logging.getLogger(__name__)

MODEL_RADIUS = 8.0
"""Median object radius (px, by :func:`tools.scale.estimate_object_scale`) of the bundled
model's training images; it was trained with scale augmentation 0.7-1.4."""
MODEL_RADIUS_RANGE = (5.5, 12.0)
"""Estimated radii the bundled model handles as they are; others are rescaled to MODEL_RADIUS."""

BUNDLED_MODEL_DIR = Path(__file__).resolve().parent / "models" / "stardist2d_bia"
# 2D_versatile_he is left out: it expects RGB H&E images, this tool takes one channel.
PRETRAINED_2D = ("2D_versatile_fluo", "2D_paper_dsb2018")
PRETRAINED_3D = ("3D_demo",)

BIG_IMAGE_PIXELS = 2048 * 2048
"""Images with more pixels (voxels) than this are predicted block by block
(``predict_instances_big``) when every axis is at least ``BLOCK_SIZE`` long."""

BLOCK_SIZE = 1024
BLOCK_OVERLAP = 128
"""Overlap between blocks in pixels; objects must be smaller than this (nuclei are)."""

_DOWNLOAD_SOCKET_TIMEOUT_S = 20.0


class ModelUnavailableError(BiaError, OSError):
    """A StarDist model could not be loaded: not downloadable offline, missing or broken."""


def _quiet_tensorflow() -> None:
    # TensorFlow prints pages of CPU-feature notes on import; keep warnings and errors.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@contextlib.contextmanager
def quiet_output(*, stderr: bool = True) -> Iterator[None]:
    """Send what libraries print (to Python's streams and to file descriptors 1 and 2) to the log.

    StarDist prints "Loading network weights ..." and TensorFlow writes start-up lines from
    C++ straight to the process's stderr; neither may reach a CLI answer or the chat. The
    captured text is logged at DEBUG on this module's logger. With ``stderr=False`` only
    stdout is captured, so that progress bars (on stderr) stay visible.
    """
    fds = (1, 2) if stderr else (1,)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    saved: dict[int, int] = {}
    python_out, python_err = io.StringIO(), io.StringIO()
    with tempfile.TemporaryFile() as sink:
        try:
            for fd in fds:
                try:
                    saved[fd] = os.dup(fd)
                    os.dup2(sink.fileno(), fd)
                except OSError:  # no such descriptor (embedded interpreters): Python level only
                    saved.pop(fd, None)
            with contextlib.redirect_stdout(python_out), (
                contextlib.redirect_stderr(python_err) if stderr else contextlib.nullcontext()
            ):
                yield
        finally:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
            for fd, copy in saved.items():
                os.dup2(copy, fd)
                os.close(copy)
            sink.seek(0)
            text = sink.read().decode(errors="replace") + python_out.getvalue()
            text += python_err.getvalue()
            for line in text.splitlines():
                if line.strip():
                    logger.debug("%s", line.rstrip())


def _download_pretrained(cls: Any, name: str) -> Any:
    """``cls.from_pretrained(name)`` with a socket timeout, so a dead network fails fast."""
    previous = socket.getdefaulttimeout()
    # Keras downloads with urllib, which waits forever on a silently dropped connection; a
    # per-operation timeout turns that into an error. Set only when nobody set one before.
    if previous is None:
        socket.setdefaulttimeout(_DOWNLOAD_SOCKET_TIMEOUT_S)
    try:
        model = cls.from_pretrained(name)
    except Exception as exc:  # keras raises a bare Exception("URL fetch failure ...")
        raise ModelUnavailableError(
            f"could not download the pretrained StarDist model {name!r} ({exc}). It is fetched "
            "from GitHub on first use and then cached in ~/.keras/models; this computer seems "
            "to be offline. Use model='bundled' (bia's own StarDist2D, trained on synthetic "
            "nuclei, the offline default) or give a model folder with model_dir."
        ) from exc
    finally:
        if previous is None:
            socket.setdefaulttimeout(None)
    if model is None:  # from_pretrained returns None for a name it does not know
        raise ModelUnavailableError(f"StarDist has no pretrained model named {name!r}")
    return model


@functools.lru_cache(maxsize=4)
def load_model(model: str = "bundled") -> Any:
    """Load a StarDist model once per session.

    Parameters
    ----------
    model : str
        ``"bundled"`` for bia's offline model, a pretrained StarDist name
        (``"2D_versatile_fluo"``, ``"2D_paper_dsb2018"``, ``"3D_demo"``;
        downloaded on first use), or the path of a StarDist model folder (with
        ``config.json`` and ``weights_best.h5``), 2D or 3D.

    Returns
    -------
    StarDist2D or StarDist3D
        The model, with its optimised probability and NMS thresholds.

    Raises
    ------
    ModelUnavailableError
        If a pretrained model cannot be downloaded (offline), or a folder is not a StarDist
        model.

    References
    ----------
    .. [1] U. Schmidt, M. Weigert, C. Broaddus and G. Myers, "Cell detection with star-convex
       polygons", MICCAI 2018, LNCS 11071:265-273.

    Examples
    --------
    >>> net = load_model("bundled")
    >>> net.config.n_dim
    2
    """
    pretrained = model in PRETRAINED_2D or model in PRETRAINED_3D
    folder = BUNDLED_MODEL_DIR if model == "bundled" else Path(model).expanduser()
    config_file = folder / "config.json"
    if not pretrained and (not config_file.is_file() or not any(folder.glob("weights*.h5"))):
        hint = (
            "the bundled model is missing from this installation; recreate it with "
            "`python -m tools.train_stardist`"
            if model == "bundled"
            else "a StarDist model folder holds config.json and weights_best.h5"
        )
        raise ModelUnavailableError(f"no StarDist model in {folder}: {hint}")

    _quiet_tensorflow()
    with quiet_output():
        from stardist.models import StarDist2D, StarDist3D

        if pretrained:
            return _download_pretrained(
                StarDist2D if model in PRETRAINED_2D else StarDist3D, model)
        try:
            n_dim = int(json.loads(config_file.read_text()).get("n_dim", 2))
            cls = StarDist3D if n_dim == 3 else StarDist2D
            return cls(None, name=folder.name, basedir=str(folder.parent))
        except Exception as exc:  # corrupt JSON or weights: report, do not crash the session
            raise ModelUnavailableError(
                f"could not load the StarDist model in {folder}: {exc}"
            ) from exc


@tool(category="segment")
def stardist_segment(
    image: Image,
    model: Literal["bundled", "2D_versatile_fluo"] = "bundled",
    prob_thresh: Annotated[float, Gt(0), Lt(1)] | None = None,
    nms_thresh: Annotated[float, Gt(0), Lt(1)] | None = None,
    scale: Annotated[float, Gt(0)] | None = None,
    slice_wise: bool = False,
    model_dir: InputPath | None = None,
) -> Labels:
    """Segment nuclei (round or oval, touching or not) with StarDist deep learning.

    Usually more accurate than thresholding on crowded, touching or unevenly bright nuclei.
    The image is normalised to its 1st-99.8th intensity percentiles, then each object is
    predicted as a star-convex polygon. The bundled model works offline; it was trained on
    synthetic nuclei about 10-34 pixels across. Images above 2048x2048 pixels are processed in
    overlapping 1024-pixel blocks.

    Parameters
    ----------
    image : Image
        Fluorescence image of nuclei: 2D, or 3D (ZYX) with a 3D model from ``model_dir`` or
        with ``slice_wise``.
    model : {"bundled", "2D_versatile_fluo"}
        Which StarDist model: "bundled" is bia's offline model; "2D_versatile_fluo" is
        StarDist's published fluorescence model, downloaded on first use (needs internet).
    prob_thresh : float, optional
        Object probability threshold (0-1). Higher gives fewer, surer objects. The model's
        optimised value when left out.
    nms_thresh : float, optional
        Overlap threshold (0-1) of non-maximum suppression. Higher keeps more overlapping
        objects. The model's optimised value when left out.
    scale : float, optional
        Resize factor applied before prediction, results are mapped back to the input's
        shape. When left out with the bundled model on a 2D image, the nuclei's size is
        estimated from the image (:func:`tools.scale.estimate_object_scale`) and the image is
        resized so that they match the model's training size (radius about 8 px) if their
        radius is outside 5.5-12 px; 0.5 halves, 2 doubles.
    slice_wise : bool
        For a 3D stack with a 2D model: segment each Z slice on its own. Labels are unique
        across the stack but NOT linked between slices.
    model_dir : str, optional
        Path of a StarDist model folder (config.json, weights_best.h5), 2D or 3D, to use
        instead of ``model``.

    Returns
    -------
    Labels
        Instance labels (0 background, 1..N objects), int32, same shape as the image.

    References
    ----------
    .. [1] U. Schmidt, M. Weigert, C. Broaddus and G. Myers, "Cell detection with star-convex
       polygons", MICCAI 2018, LNCS 11071:265-273. doi:10.1007/978-3-030-00934-2_30
    .. [2] M. Weigert, U. Schmidt, R. Haase, K. Sugawara and G. Myers, "Star-convex polyhedra
       for 3D object detection and segmentation in microscopy", WACV 2020.

    Examples
    --------
    >>> from tools.synthetic import nuclei_2d
    >>> data = nuclei_2d((128, 128), n_nuclei=8, seed=3001)
    >>> labels = stardist_segment(data.image)  # the bundled model, offline
    >>> labels.shape == data.image.shape, bool(labels.max() > 0)
    (True, True)
    """
    data = check_image(image)
    if model not in ("bundled", "2D_versatile_fluo"):
        raise InputError(
            f"unknown StarDist model {model!r}; choose 'bundled' (offline) or "
            "'2D_versatile_fluo', or give a model folder with model_dir"
        )
    if float(data.min()) == float(data.max()):
        raise InputError("image is constant: there is nothing to segment")
    if model_dir is not None and not str(model_dir).strip():
        raise InputError("model_dir is empty; give the path of a StarDist model folder")
    net = load_model(str(model_dir) if model_dir is not None else model)
    n_dim = len(net.config.axes.replace("C", ""))

    normalized = _normalize(data)
    kwargs: dict[str, Any] = {"prob_thresh": prob_thresh, "nms_thresh": nms_thresh}
    if scale is None and model_dir is None and model == "bundled" and data.ndim == 2:
        scale = _matching_scale(data)
    if scale is not None:
        kwargs["scale"] = float(scale)
    if data.ndim == n_dim:
        return _predict(net, normalized, kwargs)
    if data.ndim == 3 and n_dim == 2:
        if not slice_wise:
            raise InputError(
                f"image is 3D (shape {data.shape}) but the StarDist model is 2D; set "
                "slice_wise=True to segment each Z slice separately (labels not linked "
                "across slices), or give a 3D StarDist model folder with model_dir"
            )
        return _predict_slices(net, normalized, kwargs)
    raise InputError(
        f"image is 2D (shape {data.shape}) but the StarDist model is 3D; use a 2D model"
    )


def _matching_scale(data: np.ndarray) -> float | None:
    """The resize factor that brings the image's objects to the bundled model's size."""
    return model_scale(radius_from_image(data), data.shape)


def model_scale(found: ObjectScale | None, shape: tuple[int, ...]) -> float | None:
    """The resize factor for objects of the estimated size ``found`` in an image of ``shape``.

    None (no resizing) when the size is unknown or within the bundled model's training range;
    the choice is recorded either way.
    """
    if found is None:
        record_choice("scale", 1.0, describe(found))
        return None
    low, high = MODEL_RADIUS_RANGE
    if low <= found["radius"] <= high:
        record_choice("scale", 1.0, describe(found) + "; the model's training size")
        return None
    # Enlarging more than 1.5x enlarges the noise into blobs the model takes for nuclei
    # (measured: radius 3 px, factor 2.7 found 5x too many); shrinking is safe.
    factor = round(float(np.clip(MODEL_RADIUS / found["radius"], 0.1, 1.5)), 3)
    # StarDist needs the resized image to keep a few network strides per axis.
    if min(shape) * factor < 32:
        factor = round(32 / min(shape), 3)
    record_choice("scale", factor, describe(found) + f"; resized to the model's radius "
                  f"{MODEL_RADIUS:g} px")
    return factor


def bundled_labels(data: np.ndarray, found: ObjectScale | None) -> np.ndarray:
    """Labels of a checked 2D image by the bundled model, resized for objects of size ``found``.

    :func:`stardist_segment`'s default path (bundled model, its own probability and overlap
    thresholds, resized to the model's size) for tools that already estimated the objects'
    size, so the estimate is not made twice.
    """
    scale = model_scale(found, data.shape)
    kwargs: dict[str, Any] = {"prob_thresh": None, "nms_thresh": None}
    if scale is not None:
        kwargs["scale"] = scale
    return _predict(load_model("bundled"), _normalize(data), kwargs)


def _normalize(data: np.ndarray) -> np.ndarray:
    from csbdeep.utils import normalize

    return normalize(data, 1, 99.8, axis=None).astype(np.float32, copy=False)


def _predict(net: Any, data: np.ndarray, kwargs: dict[str, Any]) -> np.ndarray:
    axes = "YX" if data.ndim == 2 else "ZYX"
    if data.size > BIG_IMAGE_PIXELS and min(data.shape) >= BLOCK_SIZE:
        # Blocks are predicted one by one and objects cut by a block edge are taken from the
        # neighbouring block: memory stays bounded, the result matches a whole-image run.
        with quiet_output(stderr=False):  # the progress bar (stderr) stays
            labels, _ = net.predict_instances_big(
                data,
                axes=axes,
                block_size=BLOCK_SIZE,
                min_overlap=BLOCK_OVERLAP,
                context=BLOCK_OVERLAP,
                show_progress=True,
                **kwargs,
            )
    else:
        # A long, thin image is split into tiles for the network only (one NMS at the end).
        n_tiles = tuple(max(1, -(-s // BLOCK_SIZE)) for s in data.shape)
        with quiet_output():
            labels, _ = net.predict_instances(
                data, axes=axes, n_tiles=n_tiles, show_tile_progress=False, **kwargs
            )
    return np.asarray(labels, dtype=np.int32)


def _predict_slices(net: Any, stack: np.ndarray, kwargs: dict[str, Any]) -> np.ndarray:
    from tqdm import tqdm

    out = np.zeros(stack.shape, dtype=np.int32)
    offset = 0
    for z in tqdm(range(stack.shape[0]), desc="StarDist slices", leave=False):
        labels = _predict(net, stack[z], kwargs)
        out[z] = np.where(labels > 0, labels + offset, 0)
        offset = int(out[z].max()) if labels.max() > 0 else offset
    return out
