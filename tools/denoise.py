"""Denoising: reduce noise while keeping object edges."""

from __future__ import annotations

import contextlib
import io
import re
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from annotated_types import Ge, Gt
from scipy import ndimage as ndi
from skimage.restoration import denoise_nl_means, estimate_sigma

from tools.checks import check_image
from tools.errors import InputError
from tools.filters import declare_reach
from tools.registry import tool
from tools.types import Image, InputPath, OutputPath


def _check_size(data: np.ndarray, method: str, *, minimum: int = 3) -> None:
    """Refuse an image with an axis shorter than ``minimum`` pixels (a 1x500 strip, 1x1)."""
    if min(data.shape) < minimum:
        raise InputError(
            f"image of shape {data.shape} is too small for {method}: every axis needs at "
            f"least {minimum} pixels"
        )


@declare_reach(lambda a: int(a["patch_distance"]) + int(a["patch_size"]) // 2)
@tool(category="denoise")
def denoise_nlm(
    image: Image,
    strength: Annotated[float, Gt(0)] = 0.8,
    patch_size: Annotated[int, Ge(3)] = 5,
    patch_distance: Annotated[int, Ge(1)] = 6,
    noise_sigma: Annotated[float, Gt(0)] | None = None,
) -> Image:
    """Remove noise with non-local means, which averages similar patches and keeps edges.

    Good default for fluorescence images with moderate noise. The noise level is estimated
    from the image unless given.

    Parameters
    ----------
    image : ([P, ]M, N) ndarray
        2D or 3D grayscale image.
    strength : float
        Filtering strength as a multiple of the noise standard deviation. Larger removes more
        noise and more fine detail.
    patch_size : int
        Side of the patches compared, in pixels.
    patch_distance : int
        How far to search for similar patches, in pixels. Larger is slower.
    noise_sigma : float, optional
        Standard deviation of the noise in intensity units; estimated when left out.

    Returns
    -------
    denoised : ([P, ]M, N) ndarray of float32
        The denoised image, float32, same shape.

    References
    ----------
    .. [1] A. Buades, B. Coll and J.-M. Morel, "A non-local algorithm for image denoising,"
           CVPR 2005, vol. 2, 60-65.

    Examples
    --------
    >>> from tools.denoise import denoise_nlm
    >>> from tools.synthetic import noisy_clean_pair
    >>> pair = noisy_clean_pair((64, 64), seed=0)
    >>> rms = lambda x: float(((x - pair.clean) ** 2).mean() ** 0.5)
    >>> bool(rms(denoise_nlm(pair.noisy)) < 0.6 * rms(pair.noisy))
    True
    """
    data = check_image(image)
    _check_size(data, "non-local means")
    sigma = float(noise_sigma) if noise_sigma is not None else float(estimate_sigma(data))
    if sigma == 0.0:
        return data.copy()  # a noise-free (e.g. constant) image has nothing to remove
    result = denoise_nl_means(
        data,
        patch_size=patch_size,
        patch_distance=patch_distance,
        h=strength * sigma,
        sigma=sigma,
        fast_mode=True,
        preserve_range=True,
    )
    return np.asarray(result, dtype=np.float32)


def _robust_range(data: np.ndarray) -> tuple[float, float]:
    """Low and high intensity used to scale an image to about [0, 1] (0.1 and 99.9 percentiles).

    Percentiles rather than min/max so that a few hot pixels do not change what a
    strength parameter means.
    """
    low, high = (float(v) for v in np.percentile(data, (0.1, 99.9)))
    if high <= low:
        low, high = float(data.min()), float(data.max())
    return low, (high if high > low else low + 1.0)


@tool(category="denoise")
def denoise_tv(
    image: Image,
    weight: Annotated[float, Gt(0)] | None = None,
) -> Image:
    """Remove noise by total-variation minimisation (Chambolle): flat regions, sharp edges.

    Produces piecewise-constant ("cartoon") results: good for objects of uniform brightness,
    less so for fine texture.

    Parameters
    ----------
    image : ([P, ]M, N) ndarray
        2D or 3D grayscale image.
    weight : float, optional
        Denoising strength, for the image scaled to [0, 1] by its 0.1 and 99.9 percentiles;
        typical values 0.02 to 0.3. Larger is smoother. When left out, twice the noise level
        estimated from the image (in the same scaled units).

    Returns
    -------
    denoised : ([P, ]M, N) ndarray of float32
        The denoised image, float32, same shape and intensity units.

    References
    ----------
    .. [1] L. I. Rudin, S. Osher and E. Fatemi, "Nonlinear total variation based noise removal
           algorithms," Physica D 60, 259-268 (1992).
    .. [2] A. Chambolle, "An algorithm for total variation minimization and applications,"
           J. Math. Imaging Vis. 20, 89-97 (2004).

    Examples
    --------
    A noisy step becomes flat on both sides, and the step stays sharp:

    >>> import numpy as np
    >>> from tools.denoise import denoise_tv
    >>> step = np.repeat([[0.0] * 16 + [1.0] * 16], 32, axis=0)
    >>> noisy = step + np.random.default_rng(0).normal(0, 0.1, step.shape)
    >>> flat = denoise_tv(noisy, weight=0.1)
    >>> bool(flat[:, :14].std() < noisy[:, :14].std() / 3), bool(flat[:, 17].mean() > 0.8)
    (True, True)
    """
    from skimage.restoration import denoise_tv_chambolle

    data = check_image(image)
    if float(data.min()) == float(data.max()):
        return data.copy()  # a constant image has no noise to remove
    low, high = _robust_range(data)
    scaled = (data - low) / (high - low)
    if weight is None:
        weight = max(2.0 * float(estimate_sigma(scaled)), 1e-3)
    elif not np.isfinite(weight) or weight <= 0:
        raise InputError(f"weight must be > 0, got {weight}")
    result = denoise_tv_chambolle(scaled, weight=float(weight))
    return (result * (high - low) + low).astype(np.float32)


@tool(category="denoise")
def denoise_bilateral(
    image: Image,
    sigma_spatial: Annotated[float, Gt(0)] = 2.0,
    sigma_color: Annotated[float, Gt(0)] | None = None,
) -> Image:
    """Remove noise with a bilateral filter: average neighbours of similar intensity only.

    Smooths within objects without blurring across edges. 2D only; for a 3D stack use
    denoise_nlm, denoise_tv or denoise_wavelet.

    Parameters
    ----------
    image : (M, N) ndarray
        2D grayscale image.
    sigma_spatial : float
        Spatial reach of the averaging, in pixels.
    sigma_color : float, optional
        Intensity difference still averaged, for the image scaled to [0, 1] by its 0.1 and
        99.9 percentiles. When left out, twice the estimated noise level.

    Returns
    -------
    denoised : (M, N) ndarray of float32
        The denoised image, float32, same shape and intensity units.

    References
    ----------
    .. [1] C. Tomasi and R. Manduchi, "Bilateral filtering for gray and color images,"
           ICCV 1998, 839-846.

    Examples
    --------
    >>> from tools.denoise import denoise_bilateral
    >>> from tools.synthetic import blobs
    >>> image = blobs(5, shape=(48, 48), noise=0.05, seed=1).image
    >>> smoothed = denoise_bilateral(image, sigma_spatial=2.0)
    >>> smoothed.shape, bool(smoothed.std() < image.std())
    ((48, 48), True)
    """
    from skimage.restoration import denoise_bilateral as skimage_bilateral

    data = check_image(image, ndim=(2,))
    _check_size(data, "the bilateral filter")
    if not np.isfinite(sigma_spatial) or sigma_spatial <= 0:
        raise InputError(f"sigma_spatial must be > 0 pixels, got {sigma_spatial}")
    low, high = _robust_range(data)
    scaled = np.clip((data - low) / (high - low), -0.5, 1.5)
    if sigma_color is None:
        sigma_color = max(2.0 * float(estimate_sigma(scaled)), 1e-3)
    elif not np.isfinite(sigma_color) or sigma_color <= 0:
        raise InputError(f"sigma_color must be > 0, got {sigma_color}")
    # skimage bins intensities over [min, max]: shift to >= 0 so negative read noise is kept.
    # Reflected, not repeated, border: copies of a noisy edge pixel all pass the range kernel,
    # so "edge" padding kept noise along the border as bright blotches that were counted.
    result = skimage_bilateral(
        scaled + 0.5, sigma_color=float(sigma_color), sigma_spatial=float(sigma_spatial),
        mode="reflect",
    ) - 0.5
    return (result * (high - low) + low).astype(np.float32)


@tool(category="denoise")
def denoise_wavelet(
    image: Image,
    method: Literal["BayesShrink", "VisuShrink"] = "BayesShrink",
    wavelet: Literal["db1", "db2", "sym4", "coif1"] = "sym4",
    noise_sigma: Annotated[float, Gt(0)] | None = None,
) -> Image:
    """Remove noise by shrinking small wavelet coefficients (fast, keeps detail at many scales).

    Parameters
    ----------
    image : ([P, ]M, N) ndarray
        2D or 3D grayscale image.
    method : str
        Threshold rule: "BayesShrink" adapts a soft threshold per sub-band (usually better);
        "VisuShrink" uses one universal threshold (smoother, can over-smooth).
    wavelet : str
        Wavelet family; "db1" (Haar) gives blocky results, "sym4" smoother ones.
    noise_sigma : float, optional
        Standard deviation of the noise in intensity units; estimated when left out.

    Returns
    -------
    denoised : ([P, ]M, N) ndarray of float32
        The denoised image, float32, same shape.

    References
    ----------
    .. [1] D. L. Donoho and I. M. Johnstone, "Ideal spatial adaptation by wavelet shrinkage,"
           Biometrika 81, 425-455 (1994). (VisuShrink)
    .. [2] S. G. Chang, B. Yu and M. Vetterli, "Adaptive wavelet thresholding for image
           denoising and compression," IEEE Trans. Image Process. 9, 1532-1546 (2000).
           (BayesShrink)

    Examples
    --------
    >>> from tools.denoise import denoise_wavelet
    >>> from tools.synthetic import noisy_clean_pair
    >>> pair = noisy_clean_pair((64, 64), photons=10.0, seed=2)
    >>> before = abs(pair.noisy - pair.clean).mean()
    >>> bool(abs(denoise_wavelet(pair.noisy) - pair.clean).mean() < before)
    True
    """
    from skimage.restoration import denoise_wavelet as skimage_wavelet

    data = check_image(image)
    if float(data.min()) == float(data.max()):
        return data.copy()  # a constant image has no noise to remove
    if noise_sigma is not None and (not np.isfinite(noise_sigma) or noise_sigma <= 0):
        raise InputError(f"noise_sigma must be > 0, got {noise_sigma}")
    low, high = _robust_range(data)
    scaled = (data - low) / (high - low)
    sigma = None if noise_sigma is None else float(noise_sigma) / (high - low)
    with warnings.catch_warnings():
        # A stack with few planes is shorter along Z than one wavelet level; PyWavelets warns
        # about boundary effects, but the in-plane shrinkage still works (tested on 12 planes).
        warnings.filterwarnings("ignore", message="Level value of", category=UserWarning)
        result = skimage_wavelet(
            scaled, sigma=sigma, wavelet=wavelet, mode="soft", method=method, rescale_sigma=True
        )
    return (result * (high - low) + low).astype(np.float32)


MODEL_NAME = re.compile(r"^(?!\.+$)[A-Za-z0-9_.-]{1,64}$")

AutoMethod = Literal["gaussian", "tv", "wavelet", "nlm", "bilateral"]
DEFAULT_AUTO_METHODS: tuple[AutoMethod, ...] = ("gaussian", "tv", "wavelet", "nlm")


def _auto_candidates(
    scaled: np.ndarray, methods: Sequence[AutoMethod], sigma: float
) -> dict[str, tuple[Callable[..., np.ndarray], dict[str, list[Any]]]]:
    """Denoisers of a [0, 1]-scaled image with their parameter grids, for calibration.

    Grids are a handful of values around what works for the estimated noise level ``sigma``,
    so that calibration costs about 15 denoiser calls.
    """
    from skimage.restoration import denoise_bilateral as skimage_bilateral
    from skimage.restoration import denoise_tv_chambolle
    from skimage.restoration import denoise_wavelet as skimage_wavelet

    s = max(sigma, 1e-3)
    # In 3D the search window grows as its cube: 13**3 voxels costs 8x more than 7**3.
    search = 6 if scaled.ndim == 2 else 3
    table: dict[str, tuple[Callable[..., np.ndarray], dict[str, list[Any]]]] = {
        "gaussian": (
            lambda x, sigma: ndi.gaussian_filter(x, sigma, mode="nearest"),
            {"sigma": [0.5, 1.0, 1.5, 2.0, 3.0]},
        ),
        "tv": (
            lambda x, weight: denoise_tv_chambolle(x, weight=weight),
            {"weight": [round(f * s, 5) for f in (0.5, 1.0, 2.0, 4.0, 8.0)]},
        ),
        "wavelet": (
            lambda x, sigma: skimage_wavelet(
                x, sigma=sigma, wavelet="sym4", mode="soft", method="BayesShrink",
                rescale_sigma=True,
            ),
            {"sigma": [round(f * s, 5) for f in (0.5, 1.0, 1.5, 2.0)]},
        ),
        "nlm": (
            lambda x, h: denoise_nl_means(
                x, h=h, sigma=s, patch_size=5, patch_distance=search, fast_mode=True
            ),
            {"h": [round(f * s, 5) for f in (0.4, 0.8, 1.2)]},
        ),
        "bilateral": (
            lambda x, sigma_color: skimage_bilateral(
                x + 0.5, sigma_color=sigma_color, sigma_spatial=2.0, mode="edge"
            ) - 0.5,
            {"sigma_color": [round(f * s, 5) for f in (1.0, 2.0, 4.0)]},
        ),
    }
    return {m: table[m] for m in methods}


def choose_denoiser(
    image: np.ndarray, methods: Sequence[AutoMethod] | None = None
) -> dict[str, Any]:
    """Pick a denoiser and its parameters from the noisy image alone (Noise2Self calibration).

    Each candidate is made J-invariant (a grid of pixels is hidden from it and filled by
    interpolation) and scored by its mean squared difference to the noisy image at the hidden
    pixels. With noise independent between pixels, that score equals the error against the
    clean image plus a constant, so the lowest score wins without a clean image (Batson &
    Royer, ICML 2019; :func:`skimage.restoration.calibrate_denoiser`).

    Parameters
    ----------
    image : ndarray
        2D or 3D grayscale image.
    methods : sequence of str, optional
        Candidate methods among "gaussian", "tv", "wavelet", "nlm", "bilateral" (2D only);
        gaussian, tv, wavelet and nlm by default.

    Returns
    -------
    dict
        ``method``, ``parameters`` (in the units of the image scaled to [0, 1] by its 0.1 and
        99.9 percentiles, except ``sigma`` of gaussian in pixels), ``loss`` (self-supervised
        MSE, same scaled units), and ``candidates``: every method and parameter set tried with
        its loss, best first.
    """
    from skimage.restoration import calibrate_denoiser

    data = check_image(image)
    chosen = list(DEFAULT_AUTO_METHODS if methods is None else methods)
    if not chosen:
        raise InputError("methods is empty; name at least one of gaussian, tv, wavelet, nlm")
    unknown = sorted(set(chosen) - set(AutoMethod.__args__))  # type: ignore[attr-defined]
    if unknown:
        raise InputError(
            f"unknown denoising method(s) {unknown}; choose from "
            + ", ".join(AutoMethod.__args__)  # type: ignore[attr-defined]
        )
    if "bilateral" in chosen and data.ndim != 2:
        raise InputError("bilateral works on 2D images only; leave it out for a 3D stack")
    low, high = _robust_range(data)
    scaled = ((data - low) / (high - low)).astype(np.float64)
    sigma = float(estimate_sigma(scaled))
    candidates = []
    for method, (function, grid) in _auto_candidates(scaled, chosen, sigma).items():
        with warnings.catch_warnings():  # wavelets on short stacks: see denoise_wavelet
            warnings.filterwarnings("ignore", message="Level value of", category=UserWarning)
            _, (tested, losses) = calibrate_denoiser(
                scaled, function, denoise_parameters=grid, extra_output=True
            )
        candidates += [
            {"method": method, "parameters": dict(p), "loss": float(loss)}
            for p, loss in zip(tested, losses, strict=True)
        ]
    candidates.sort(key=lambda c: c["loss"])
    best = candidates[0]
    return {
        "method": best["method"],
        "parameters": best["parameters"],
        "loss": best["loss"],
        "noise_sigma_estimate": sigma * (high - low),
        "candidates": candidates,
    }


@tool(category="denoise")
def denoise_auto(
    image: Image,
    methods: list[AutoMethod] | None = None,
) -> tuple[Image, dict]:
    """Denoise with the method and strength chosen from the image itself (no clean image needed).

    Tries Gaussian blur, total variation, wavelet and non-local means at a few strengths,
    scores each by self-supervised (J-invariant, Noise2Self) calibration on the noisy image,
    and applies the best. Use when unsure which denoiser to pick. Assumes the noise is
    independent from pixel to pixel (camera shot and read noise), not striped or correlated.

    Parameters
    ----------
    image : ([P, ]M, N) ndarray
        2D or 3D grayscale image.
    methods : list of str, optional
        Candidates among "gaussian", "tv", "wavelet", "nlm", "bilateral" (2D only); all but
        bilateral when left out.

    Returns
    -------
    denoised : ([P, ]M, N) ndarray of float32
        The image denoised by the chosen method, float32, same shape and intensity units.
    choice : dict
        The choice: method, parameters, self-supervised loss, and every candidate's loss.

    References
    ----------
    .. [1] J. Batson and L. Royer, "Noise2Self: blind denoising by self-supervision,"
           ICML 2019.

    Examples
    --------
    >>> from tools.denoise import denoise_auto
    >>> from tools.synthetic import noisy_clean_pair
    >>> pair = noisy_clean_pair((48, 48), seed=3)
    >>> denoised, choice = denoise_auto(pair.noisy, methods=["gaussian", "tv"])
    >>> choice["method"] in ("gaussian", "tv"), denoised.shape
    (True, (48, 48))
    """
    data = check_image(image)
    _check_size(data, "self-calibrated denoising")
    choice = choose_denoiser(data, methods)
    low, high = _robust_range(data)
    scaled = ((data - low) / (high - low)).astype(np.float64)
    sigma = choice["noise_sigma_estimate"] / (high - low)
    function, _ = _auto_candidates(scaled, [choice["method"]], sigma)[choice["method"]]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Level value of", category=UserWarning)
        result = function(scaled, **choice["parameters"])
    choice["candidates"] = choice["candidates"][:8]  # enough to see the ranking
    return (result * (high - low) + low).astype(np.float32), choice


@tool(category="denoise")
def denoise_n2v(
    image: Image,
    epochs: Annotated[int, Ge(1)] = 10,
    steps_per_epoch: Annotated[int, Ge(1)] = 30,
    patch_size: Annotated[int, Ge(8)] = 64,
    batch_size: Annotated[int, Ge(1)] = 16,
    depth: Annotated[int, Ge(1)] = 2,
    mask_fraction: Annotated[float, Gt(0)] = 0.02,
    seed: int = 0,
    save_model: OutputPath | None = None,
) -> Image:
    """Denoise by training a Noise2Void network on the image itself (no clean image needed).

    Blind-spot training: a small U-Net learns to predict each pixel from its neighbours only,
    which removes noise that is independent from pixel to pixel and keeps structure the
    classical filters blur. Costs about a minute on 2 CPU cores with the defaults (256x256);
    more epochs give better results. Use denoise_auto first for a quick answer.

    Parameters
    ----------
    image : ([P, ]M, N) ndarray
        2D or 3D grayscale noisy image (raw camera data works best; do not pre-filter).
    epochs : int
        Training epochs; each draws fresh random patches and blind spots.
    steps_per_epoch : int
        Gradient steps per epoch.
    patch_size : int
        Side of the square training patches in pixels (3D: cubes of half this side).
    batch_size : int
        Patches per gradient step.
    depth : int
        Resolution levels of the U-Net; 2 is enough for noise, 3 sees wider context.
    mask_fraction : float
        Fraction of pixels hidden (blind spots) in each patch; 0.005 to 0.05.
    seed : int
        Seed of patch sampling, masking and weight initialisation: same seed, same model.
    save_model : OutputPath, optional
        Name of a new folder to save the trained model in, as a CARE model folder that
        apply_care_model can load (e.g. "n2v_model"). Not saved when left out.

    Returns
    -------
    denoised : ([P, ]M, N) ndarray of float32
        The denoised image, float32, same shape and intensity units.

    References
    ----------
    .. [1] A. Krull, T.-O. Buchholz and F. Jug, "Noise2Void - learning denoising from single
           noisy images," CVPR 2019, 2129-2137.

    Examples
    --------
    Training takes about a minute with the defaults; a few steps on a small image show the
    call (the result is not yet much better than the input):

    >>> import numpy as np
    >>> from tools.denoise import denoise_n2v
    >>> rng = np.random.default_rng(0)
    >>> noisy = rng.normal(0.5, 0.1, (32, 32)).astype(np.float32)
    >>> denoised = denoise_n2v(noisy, epochs=1, steps_per_epoch=2, patch_size=16, batch_size=2,
    ...                        depth=1)
    >>> denoised.shape, denoised.dtype
    ((32, 32), dtype('float32'))
    """
    from tools._n2v import BlindSpotConfig, predict_care, train_blind_spot

    data = check_image(image)
    if not 0 < mask_fraction <= 0.25:
        raise InputError(f"mask_fraction must be in (0, 0.25], got {mask_fraction}")
    if min(data.shape[-2:]) < 8:
        raise InputError(f"image of shape {data.shape} is too small to train on; need >= 8x8")
    for name, value, low in (
        ("epochs", epochs, 1), ("steps_per_epoch", steps_per_epoch, 1),
        ("patch_size", patch_size, 8), ("batch_size", batch_size, 1), ("depth", depth, 1),
    ):
        if int(value) != value or value < low:
            raise InputError(f"{name} must be an integer >= {low}, got {value}")
    folder = None if save_model is None else Path(save_model)
    if folder is not None and (folder.exists() or not MODEL_NAME.match(folder.name)):
        raise InputError(
            f"save_model {save_model!r} must name a new folder (letters, digits, '_', '-', "
            "'.')" + ("; it already exists" if folder.exists() else "")
        )
    if float(data.max()) == float(data.min()):
        return data.copy()  # a constant image has no noise to learn
    config = BlindSpotConfig(
        patch_size=int(patch_size), epochs=int(epochs), steps_per_epoch=int(steps_per_epoch),
        batch_size=int(batch_size), depth=int(depth), mask_fraction=float(mask_fraction),
        seed=int(seed),
    )
    if folder is not None:
        folder.parent.mkdir(parents=True, exist_ok=True)
    model, _ = train_blind_spot(
        data, config, save_dir=None if folder is None else folder.parent,
        name="n2v" if folder is None else folder.name,
    )
    return predict_care(model, data, "YX" if data.ndim == 2 else "ZYX")


@tool(category="denoise")
def apply_care_model(
    image: Image,
    model_dir: InputPath,
    n_tiles: list[Annotated[int, Ge(1)]] | None = None,
) -> Image:
    """Restore an image with a trained CARE model (content-aware restoration) from a folder.

    Works with any csbdeep CARE model folder (``config.json`` and ``weights_*.h5``), e.g. one
    trained with CSBDeep on matched low/high quality images, or one saved by denoise_n2v.
    Nothing is downloaded.

    Parameters
    ----------
    image : ([P, ]M, N) ndarray
        2D or 3D image matching the model's axes (YX or ZYX).
    model_dir : str
        The model folder (containing ``config.json``).
    n_tiles : list of int, optional
        Tiles per axis for large images that do not fit in memory, e.g. [1, 4, 4].

    Returns
    -------
    restored : ([P, ]M, N) ndarray of float32
        The restored image, float32, same shape and about the same intensity range.

    References
    ----------
    .. [1] M. Weigert et al., "Content-aware image restoration: pushing the limits of
           fluorescence microscopy," Nat. Methods 15, 1090-1097 (2018).

    Examples
    --------
    A model saved by :func:`denoise_n2v` (a CARE model folder) restores other images:

    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> from tools.denoise import apply_care_model, denoise_n2v
    >>> rng = np.random.default_rng(0)
    >>> noisy = rng.normal(0.5, 0.1, (32, 32)).astype(np.float32)
    >>> folder = Path(tempfile.mkdtemp()) / "n2v_model"
    >>> _ = denoise_n2v(noisy, epochs=1, steps_per_epoch=2, patch_size=16, batch_size=2,
    ...                 depth=1, save_model=str(folder))
    >>> apply_care_model(noisy[:16], model_dir=str(folder)).shape
    (16, 32)
    """
    from tools._n2v import predict_care, quiet_tensorflow

    data = check_image(image)
    folder = Path(model_dir)
    if not (folder / "config.json").is_file():
        raise InputError(
            f"{model_dir!r} is not a CARE model folder: no config.json in it. Give the folder "
            "that holds config.json and the weights_*.h5 files"
        )
    if not any(folder.glob("*.h5")) and not any(folder.glob("*.hdf5")):
        raise InputError(f"CARE model folder {model_dir!r} has no weights (*.h5) file")
    quiet_tensorflow()
    from csbdeep.models import CARE

    try:
        with contextlib.redirect_stdout(io.StringIO()):
            model = CARE(None, name=folder.name, basedir=str(folder.parent))
    except (ValueError, KeyError, OSError) as exc:
        raise InputError(f"cannot load the CARE model in {model_dir!r}: {exc}") from None
    axes = model.config.axes.replace("C", "")
    if len(axes) != data.ndim:
        raise InputError(
            f"the CARE model expects {len(axes)}D images (axes {axes}) but the image is "
            f"{data.ndim}D with shape {data.shape}"
        )
    if n_tiles is not None and len(n_tiles) != data.ndim:
        raise InputError(f"n_tiles needs one value per axis ({data.ndim}), got {n_tiles}")
    if model.config.n_channel_in != 1:
        raise InputError(
            f"the CARE model takes {model.config.n_channel_in} channels; only single-channel "
            "models are supported"
        )
    if n_tiles is None:
        return predict_care(model, data, axes)
    from csbdeep.data import PadAndCropResizer, PercentileNormalizer

    from tools._n2v import PERCENTILES

    restored = model.predict(
        data, axes, normalizer=PercentileNormalizer(*PERCENTILES),
        resizer=PadAndCropResizer(), n_tiles=tuple(n_tiles),
    )
    return np.asarray(restored, dtype=np.float32)
