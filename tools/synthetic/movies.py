"""Time-lapse movies of moving and dividing cells, with their tracks."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.ndimage as ndi

from tools.errors import InputError
from tools.synthetic._checks import check_int, check_number, check_range, check_seed, check_shape
from tools.synthetic._imaging import _add_noise, _smooth_noise
from tools.synthetic._shapes import _CANDIDATES, _ROUNDS, _rasterize, _Shapes
from tools.synthetic.ctc import TRACK_COLUMNS
from tools.types import ImageMeta


@dataclass(frozen=True, eq=False)
class Timelapse:
    """A synthetic movie of moving, dividing cells with tracking ground truth.

    Attributes
    ----------
    movie : np.ndarray
        ``float32`` ``TYX`` movie.
    labels : np.ndarray
        ``int32`` ``TYX`` label movie; a cell keeps its track label in every frame it exists.
    tracks : pd.DataFrame
        Cell Tracking Challenge table, columns ``label, begin, end, parent`` (``parent`` 0 for
        none); ``begin``/``end`` are the first and last frame of the track.
    objects : pd.DataFrame
        One row per cell per frame: ``frame, label, y, x`` (true centre in pixels).
    meta : ImageMeta
        Axes ``"TYX"`` and pixel size.
    """

    movie: np.ndarray
    labels: np.ndarray
    tracks: pd.DataFrame
    objects: pd.DataFrame
    meta: ImageMeta


def timelapse(
    n_frames: int = 20,
    *,
    shape: tuple[int, int] = (128, 128),
    n_cells: int = 10,
    speed: float = 2.0,
    persistence: float = 0.7,
    division_rate: float = 0.02,
    radius: tuple[float, float] = (5.0, 8.0),
    noise: float = 0.04,
    blur: float = 1.0,
    pixel_size: float = 0.5,
    seed: int = 0,
) -> Timelapse:
    """A movie of nuclei that move, and divide, with tracking ground truth.

    Cells follow a persistent random walk: ``v[t] = p * v[t-1] + sqrt(1 - p**2) * s * N(0, 1)``
    per axis, with ``s`` set so that the mean step length is ``speed``. They bounce off the
    image borders (always fully inside), push each other apart when closer than 0.85 of their
    summed radii (touching is allowed; each pixel keeps one label), grow 1% per frame and
    divide along their long axis.

    Parameters
    ----------
    n_frames : int
        Number of frames (1-1000).
    shape : tuple of int
        Frame size ``(rows, cols)``.
    n_cells : int
        Cells in the first frame (1-500).
    speed : float
        Mean displacement per frame in pixels.
    persistence : float
        Correlation ``p`` (0-0.99) of the velocity between frames; 0 is a plain random walk.
    division_rate : float
        Probability (0-1) per cell per frame of dividing. A cell must be 3 frames old to divide
        again, and divisions stop while cells cover more than 35% of the image. At a division
        in frame ``t`` the parent track ends at ``t - 1`` and two daughters with new labels
        begin at ``t``, on either side of the parent's position.
    radius : (float, float)
        Range of the initial mean cell radius in pixels; daughters have 0.8x the parent radius.
    noise : float
        Noise standard deviation at intensity 1 (Poisson-Gaussian, as in :func:`nuclei_2d`).
    blur : float
        PSF standard deviation in pixels.
    pixel_size : float
        Physical pixel size in µm, recorded in the metadata.
    seed : int
        Seed of the random generator.

    Returns
    -------
    Timelapse
        ``movie`` float32 ``TYX``; ``labels`` int32 ``TYX`` where each track keeps its label
        (tracks numbered ``1..N`` in order of appearance); ``tracks`` (CTC ``label, begin,
        end, parent``); ``objects`` (``frame, label, y, x``); ``meta``.
    """
    n_frames = check_int("n_frames", n_frames, 1, 1000)
    shape = check_shape(shape, (2,))
    n_cells = check_int("n_cells", n_cells, 1, 500)
    speed = check_number("speed", speed, 0.0, min(shape) / 4)
    persistence = check_number("persistence", persistence, 0.0, 0.99)
    division_rate = check_number("division_rate", division_rate, 0.0, 1.0)
    radius = check_range("radius", radius, 2.0, min(shape) / 6)
    noise = check_number("noise", noise, 0.0, 1.0)
    blur = check_number("blur", blur, 0.0, 20.0)
    pixel_size = check_number("pixel_size", pixel_size, 1e-6, 1e6)
    seed = check_seed(seed)
    area = math.prod(shape)
    if n_cells * np.pi * (0.5 * sum(radius)) ** 2 > 0.35 * area:
        raise InputError(f"{n_cells} cells of radius {radius} px do not fit in {shape}")
    rng = np.random.default_rng(seed)
    size = np.asarray(shape, float) - 1

    rad = rng.uniform(*radius, n_cells)
    r_max = 1.25 * radius[1]
    pos = np.zeros((n_cells, 2))
    for i in range(n_cells):
        # Start apart (dart throwing); later frames only push cells apart when they collide.
        for _ in range(_ROUNDS):
            cand = rng.uniform(rad[i] + 1, size - rad[i] - 1, (_CANDIDATES, 2))
            dist = np.linalg.norm(cand[:, None] - pos[None, :i], axis=-1)
            good = np.flatnonzero(np.all(dist >= rad[i] + rad[:i] + 1, axis=1))
            if good.size:
                pos[i] = cand[good[0]]
                break
        else:
            raise InputError(f"{n_cells} cells of radius {radius} px do not fit in {shape}")
    sigma_v = speed / math.sqrt(math.pi / 2)  # mean |v| of a 2D Gaussian is sigma*sqrt(pi/2)
    vel = rng.normal(0.0, sigma_v, (n_cells, 2))
    asp = rng.uniform(0.6, 0.9, n_cells)
    angle = rng.uniform(0, np.pi, n_cells)
    bright = 0.8 * np.exp(rng.uniform(-np.log(3.0), 0.0, n_cells))
    ids = np.arange(1, n_cells + 1)
    age = np.full(n_cells, 3)
    # Keep the outline perturbation per track so a cell keeps its shape from frame to frame.
    waves = rng.standard_normal((n_cells, 3, 2))
    waves *= rng.uniform(1.5, 3.5, (n_cells, 3, 1)) / np.linalg.norm(waves, axis=-1, keepdims=True)
    amps = 0.05 * rng.uniform(0, 1, (n_cells, 3))
    phases = rng.uniform(0, 2 * np.pi, (n_cells, 3))
    tracks: list[list[int]] = [[int(i), 0, 0, 0] for i in ids]
    next_id = n_cells + 1

    def separate(pos: np.ndarray, rad: np.ndarray) -> np.ndarray:
        for _ in range(10):
            diff = pos[:, None, :] - pos[None, :, :]
            dist = np.linalg.norm(diff, axis=-1)
            need = 0.85 * (rad[:, None] + rad[None, :])
            np.fill_diagonal(need, 0.0)
            short = np.clip(need - dist, 0.0, None)
            if not short.any():
                break
            unit = diff / np.maximum(dist, 1e-6)[..., None]
            pos = pos + 0.5 * np.sum(short[..., None] * unit, axis=1)
            pos = np.clip(pos, rad[:, None], size - rad[:, None])
        return pos

    movie = np.empty((n_frames, *shape), np.float32)
    label_movie = np.empty((n_frames, *shape), np.int32)
    rows: list[tuple[int, int, float, float]] = []
    for t in range(n_frames):
        if t > 0:
            noise_v = rng.normal(0.0, sigma_v, vel.shape)
            vel = persistence * vel + math.sqrt(1 - persistence**2) * noise_v
            pos = pos + vel
            # Reflect at the borders: the cell turns back instead of sticking to the edge.
            lo, hi = rad[:, None], size - rad[:, None]
            below, above = pos < lo, pos > hi
            pos = np.where(below, 2 * lo - pos, np.where(above, 2 * hi - pos, pos))
            vel = np.where(below | above, -vel, vel)
            pos = np.clip(pos, lo, hi)
            angle = angle + rng.normal(0.0, 0.1, angle.shape)
            rad = np.minimum(rad * 1.01, r_max)
            age = age + 1

            divide = (rng.random(len(ids)) < division_rate) & (age >= 3)
            covered = float(np.sum(np.pi * rad**2))
            new: dict[str, list[np.ndarray]] = {
                k: []
                for k in (
                    "pos",
                    "vel",
                    "rad",
                    "asp",
                    "angle",
                    "bright",
                    "ids",
                    "age",
                    "waves",
                    "amps",
                    "phases",
                )
            }
            for i in range(len(ids)):
                if divide[i] and covered < 0.35 * area:
                    tracks[ids[i] - 1][2] = t - 1
                    axis = np.array([np.sin(angle[i]), np.cos(angle[i])])
                    r_d = 0.8 * rad[i]
                    for sign in (-1.0, 1.0):
                        p = np.clip(pos[i] + sign * 0.9 * r_d * axis, r_d, size - r_d)
                        new["pos"].append(p)
                        new["vel"].append(vel[i] + sign * 0.5 * axis)
                        new["rad"].append(np.float64(r_d))
                        new["asp"].append(np.float64(rng.uniform(0.6, 0.9)))
                        new["angle"].append(np.float64(angle[i] + rng.normal(0, 0.3)))
                        new["bright"].append(np.float64(bright[i] * rng.uniform(0.9, 1.1)))
                        new["ids"].append(np.int64(next_id))
                        new["age"].append(np.int64(0))
                        new["waves"].append(waves[i])
                        new["amps"].append(amps[i])
                        new["phases"].append(rng.uniform(0, 2 * np.pi, 3))
                        tracks.append([next_id, t, t, int(ids[i])])
                        next_id += 1
                    covered += np.pi * (2 * r_d**2 - rad[i] ** 2)
                else:
                    for key, arr in (
                        ("pos", pos),
                        ("vel", vel),
                        ("rad", rad),
                        ("asp", asp),
                        ("angle", angle),
                        ("bright", bright),
                        ("ids", ids),
                        ("age", age),
                        ("waves", waves),
                        ("amps", amps),
                        ("phases", phases),
                    ):
                        new[key].append(arr[i])
            pos, vel, rad, asp, angle = (
                np.array(new[k]) for k in ("pos", "vel", "rad", "asp", "angle")
            )
            bright, ids, age = (np.array(new[k]) for k in ("bright", "ids", "age"))
            waves, amps, phases = (np.array(new[k]) for k in ("waves", "amps", "phases"))
            pos = separate(pos, rad)
        else:
            pos = separate(pos, rad)
        for i in ids:
            tracks[i - 1][2] = t

        axes = np.stack([rad / np.sqrt(asp), rad * np.sqrt(asp)], -1)
        c, s_ = np.cos(angle), np.sin(angle)
        # Angle measured in (y, x): the long axis points along (sin, cos).
        rot = np.stack([np.stack([s_, c], -1), np.stack([c, -s_], -1)], -1)
        shapes = _Shapes(pos, rot, axes, waves, amps, phases)
        frame_labels, fmap, kept = _rasterize(shape, np.ones(2), shapes)
        if kept.size != len(ids):  # cannot happen: a cell always owns its centre pixel
            raise AssertionError("a cell vanished while drawing")
        lut = np.concatenate([[0], ids]).astype(np.int32)
        label_movie[t] = lut[frame_labels]
        bvals = np.concatenate([[0.0], bright]).astype(np.float32)[frame_labels]
        tex = _smooth_noise(rng, shape, np.full(2, 1.0))
        signal = bvals * (1.0 - 0.2 * fmap**2) * (1.0 + 0.1 * tex)
        signal[frame_labels == 0] = 0.0
        if blur > 0:
            signal = ndi.gaussian_filter(signal, blur)
        signal += 0.08
        movie[t] = np.clip(_add_noise(rng, signal, noise), 0.0, None)
        rows.extend((t, int(i), float(p[0]), float(p[1])) for i, p in zip(ids, pos, strict=True))

    track_df = pd.DataFrame(tracks, columns=list(TRACK_COLUMNS)).astype(np.int64)
    objects = pd.DataFrame(rows, columns=["frame", "label", "y", "x"])
    meta = ImageMeta(
        axes="TYX",
        spacing={"Y": pixel_size, "X": pixel_size},
        unit="µm",
        source=f"synthetic: timelapse(seed={seed})",
        extra={"generator": "timelapse", "seed": seed, "n_tracks": len(track_df)},
    )
    return Timelapse(movie, label_movie, track_df, objects, meta)
