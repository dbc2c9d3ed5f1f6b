"""Star-shaped objects (perturbed ellipses and ellipsoids): placed, then rasterized."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.ndimage as ndi

from tools.errors import InputError

# Candidate positions tried at once per object; several rounds before giving up.
_CANDIDATES = 128
_ROUNDS = 6


@dataclass(frozen=True, eq=False)
class _Shapes:
    """Geometry of n objects in d dimensions, in physical units.

    The boundary of object i, seen from its centre, lies at scaled distance ``r(n) = 1 +
    sum_k amps[k] * cos(n . waves[k] + phases[k])`` where ``n`` is the unit direction in the
    object's axis-normalised frame: a few low-frequency waves on the unit sphere give smooth,
    irregular, still star-shaped outlines.
    """

    centers: np.ndarray  # (n, d)
    rot: np.ndarray  # (n, d, d), column k = direction of semi-axis k
    axes: np.ndarray  # (n, d) semi-axes
    waves: np.ndarray  # (n, K, d)
    amps: np.ndarray  # (n, K)
    phases: np.ndarray  # (n, K)

    def with_centers(self, centers: np.ndarray) -> _Shapes:
        return _Shapes(centers, self.rot, self.axes, self.waves, self.amps, self.phases)


def _rotations(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    if d == 2:
        t = rng.uniform(0, np.pi, n)
        c, s = np.cos(t), np.sin(t)
        return np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)
    # QR of a Gaussian matrix with the sign fix gives rotations uniform over SO(3).
    q, r = np.linalg.qr(rng.standard_normal((n, d, d)))
    q = q * np.sign(np.diagonal(r, axis1=-2, axis2=-1))[:, None, :]
    return q


def _random_shapes(
    rng: np.random.Generator,
    mean_radius: np.ndarray,
    aspect: np.ndarray,
    d: int,
    irregularity: float,
    n_waves: int = 3,
) -> _Shapes:
    """Random orientation, axis ratios and outline perturbation; centres left at 0."""
    n = len(mean_radius)
    if d == 2:
        axes = np.stack([1 / np.sqrt(aspect), np.sqrt(aspect)], -1)
    else:
        # Prolate/oblate mixtures: one long axis, two axes shortened by independent ratios,
        # then normalised so that the geometric mean of the semi-axes is the mean radius.
        second = rng.uniform(aspect, 1.0)
        raw = np.stack([np.ones(n), second, aspect], -1)
        axes = raw / np.cbrt(np.prod(raw, -1))[:, None]
    axes = axes * mean_radius[:, None]
    dirs = rng.standard_normal((n, n_waves, d))
    dirs /= np.linalg.norm(dirs, axis=-1, keepdims=True)
    # |w| in 1.5-3.5 keeps the perturbation to angular harmonics of order ~2-4 (lumpy, not
    # spiky), like real nuclear outlines.
    waves = dirs * rng.uniform(1.5, 3.5, (n, n_waves, 1))
    amps = irregularity * rng.uniform(0.0, 1.0, (n, n_waves))
    phases = rng.uniform(0, 2 * np.pi, (n, n_waves))
    return _Shapes(np.zeros((n, d)), _rotations(rng, n, d), axes, waves, amps, phases)


def _boundary_radius(s: _Shapes, idx: np.ndarray, dirs: np.ndarray) -> np.ndarray:
    """Distance from centre to boundary of objects ``idx`` (P,) along unit ``dirs`` (P, d)."""
    local = (dirs[:, None, :] @ s.rot[idx])[:, 0, :]
    scaled = local / s.axes[idx]
    rho = np.linalg.norm(scaled, axis=-1)
    n_e = scaled / rho[:, None]
    phase = (s.waves[idx] @ n_e[:, :, None])[:, :, 0] + s.phases[idx]
    r = 1.0 + np.sum(s.amps[idx] * np.cos(phase), axis=-1)
    return r / rho


def _gauge(s: _Shapes, i: int, offsets: np.ndarray) -> np.ndarray:
    """Scaled distance of physical ``offsets`` (..., d) from object i: < 1 inside, 0 at centre."""
    scaled = (offsets @ s.rot[i]) / s.axes[i]
    rho = np.linalg.norm(scaled, axis=-1)
    n_e = scaled / np.maximum(rho, 1e-12)[..., None]
    r = 1.0 + np.cos(n_e @ s.waves[i].T + s.phases[i]) @ s.amps[i]
    return rho / r


def _place(
    rng: np.random.Generator,
    s: _Shapes,
    extent: np.ndarray,
    touching: np.ndarray,
    *,
    gap: float,
    contact: tuple[float, float],
    what: str,
) -> _Shapes:
    """Place objects one by one, isolated or in contact with an earlier one.

    ``ratio = distance / (R_i + R_j)`` along the line joining two centres (R the boundary
    radii in that direction) measures closeness: isolated objects need ``ratio >= gap`` to
    every other, touching objects are put at ``ratio`` in ``contact`` (overlap, so they share
    a boundary after the split) and need ``ratio >= contact[0]`` to every other.
    """
    n, d = s.centers.shape
    centers = np.zeros((n, d))
    r_out = s.axes.max(axis=1) * (1.0 + s.amps.sum(axis=1))
    for i in range(n):
        placed = False
        for attempt in range(_ROUNDS):
            want_touch = bool(touching[i]) and i > 0 and attempt < _ROUNDS - 2
            if want_touch:
                partner = rng.integers(0, i, _CANDIDATES)
                u = rng.standard_normal((_CANDIDATES, d))
                u /= np.linalg.norm(u, axis=-1, keepdims=True)
                r_i = _boundary_radius(s, np.full(_CANDIDATES, i), -u)
                r_p = _boundary_radius(s, partner, u)
                dist = rng.uniform(*contact, _CANDIDATES) * (r_i + r_p)
                cand = centers[partner] + u * dist[:, None]
                min_ratio = contact[0]
            else:
                cand = rng.uniform(0, 1, (_CANDIDATES, d)) * extent
                min_ratio = gap
            ok = np.all((cand >= 0) & (cand <= extent), axis=1)
            if i > 0:
                diff = cand[:, None, :] - centers[None, :i, :]  # (K, i, d)
                dist = np.linalg.norm(diff, axis=-1)
                # Only pairs within reach of their largest radii can be too close; the exact
                # directional radii are computed for those alone.
                kk, jj = np.nonzero(dist < min_ratio * (r_out[i] + r_out[:i]))
                if kk.size:
                    u = diff[kk, jj] / np.maximum(dist[kk, jj], 1e-9)[:, None]
                    r_j = _boundary_radius(s, jj, u)
                    r_i = _boundary_radius(s, np.full(kk.size, i), -u)
                    close = dist[kk, jj] / (r_i + r_j) < min_ratio
                    ok[kk[close]] = False
            good = np.flatnonzero(ok)
            if good.size:
                centers[i] = cand[good[0]]
                placed = True
                break
        if not placed:
            raise InputError(
                f"could place only {i} of {n} {what} in an image of this size; use fewer or "
                "smaller objects, a larger shape, or more touching"
            )
    return s.with_centers(centers)


def _rasterize(
    shape: tuple[int, ...],
    spacing: np.ndarray,
    s: _Shapes,
    *,
    min_size: int = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw objects into labels, one label per pixel.

    Returns ``labels`` (consecutive 1..N), ``fmap`` (scaled distance of each pixel to the centre
    of the object owning it, 1 in background) and ``kept`` (object index of each label).
    """
    labels = np.zeros(shape, np.int32)
    fmap = np.ones(shape, np.float32)
    n = len(s.centers)
    extent_max = s.axes.max(axis=1) * (1.0 + s.amps.sum(axis=1)) + spacing.max()
    shape_arr = np.asarray(shape)
    for i in range(n):
        c = s.centers[i] / spacing
        half = extent_max[i] / spacing
        lo = np.maximum(np.floor(c - half).astype(int), 0)
        hi = np.minimum(np.ceil(c + half).astype(int) + 1, shape_arr)
        if np.any(hi <= lo):
            continue
        sl = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
        axes_coords = [
            np.arange(a, b) * sp - cc
            for a, b, sp, cc in zip(lo, hi, spacing, s.centers[i], strict=True)
        ]
        offsets = np.stack(np.meshgrid(*axes_coords, indexing="ij"), axis=-1)
        f = _gauge(s, i, offsets)
        sub_f = fmap[sl]
        win = f < sub_f
        sub_f[win] = f[win]
        labels[sl][win] = i + 1
    # The min-distance split can leave a sliver of one object on the far side of another;
    # keep each object's largest 4-/6-connected piece so that every label is one component.
    for k, sl in enumerate(ndi.find_objects(labels), start=1):
        if sl is None:
            continue
        mine = labels[sl] == k
        comp, ncomp = ndi.label(mine)
        if ncomp > 1:
            sizes = np.bincount(comp.ravel())
            sizes[0] = 0
            drop = mine & (comp != np.argmax(sizes))
            labels[sl][drop] = 0
            fmap[sl][drop] = 1.0
    counts = np.bincount(labels.ravel(), minlength=n + 1)
    kept = np.flatnonzero(counts[1:] >= min_size)
    lut = np.zeros(n + 1, np.int32)
    lut[kept + 1] = np.arange(1, kept.size + 1, dtype=np.int32)
    small = (counts[1:] > 0) & (counts[1:] < min_size)
    if small.any():
        fmap[np.isin(labels, np.flatnonzero(small) + 1)] = 1.0
    return lut[labels], fmap, kept
