"""Pictures for people: image previews, label overlays with contours, and plots.

Plain functions on arrays and tables, so the handlers and the tests use them without a browser.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from skimage.color import label2rgb
from skimage.segmentation import find_boundaries

from tools.types import ImageMeta


def display_plane(image: np.ndarray, meta: ImageMeta | None = None) -> np.ndarray:
    """A 2D (or RGB) view of an image: max projection over Z, first time point and channel.

    RGB images (``extra["rgb"]``) are returned as ``YX3``.
    """
    axes = meta.axes if meta is not None else "YX"[: image.ndim] if image.ndim <= 2 else None
    data = image
    if meta is not None and meta.extra.get("rgb") and axes == "CYX" and data.shape[0] in (3, 4):
        return np.moveaxis(data[:3], 0, -1)
    if axes is None or len(axes) != data.ndim:
        axes = "TCZYX"[-data.ndim:]
    for axis in "TC":
        if axis in axes and data.ndim > 2:
            data = np.take(data, 0, axis=axes.index(axis))
            axes = axes.replace(axis, "")
    if "Z" in axes and data.ndim > 2:
        data = data.max(axis=axes.index("Z"))
    return data


def to_uint8(image: np.ndarray, *, low: float = 0.5, high: float = 99.8) -> np.ndarray:
    """Contrast-stretch to 8 bits between two percentiles (what an imaging viewer does)."""
    data = image.astype(np.float32, copy=False)
    finite = data[np.isfinite(data)]
    if finite.size == 0:
        return np.zeros(data.shape, np.uint8)
    lo, hi = np.percentile(finite, [low, high])
    if hi <= lo:
        hi = lo + 1.0
    scaled = np.clip((np.nan_to_num(data, nan=lo) - lo) / (hi - lo), 0, 1)
    return (scaled * 255).astype(np.uint8)


def preview(image: np.ndarray, meta: ImageMeta | None = None) -> np.ndarray:
    """An 8-bit 2D or RGB picture of any image artifact."""
    plane = display_plane(image, meta)
    if plane.ndim == 3 and plane.shape[-1] in (3, 4):
        return plane if plane.dtype == np.uint8 else to_uint8(plane)
    return to_uint8(plane)


def overlay(image: np.ndarray, labels: np.ndarray, meta: ImageMeta | None = None,
            *, alpha: float = 0.3) -> np.ndarray:
    """RGB picture of ``image`` with each labelled object tinted and outlined in yellow.

    3D stacks are shown as a max projection of the image and of the labels.
    """
    base = preview(image, meta)
    plane_labels = display_plane(labels, meta) if labels.ndim == image.ndim else labels
    if plane_labels.shape != base.shape[:2]:
        raise ValueError(
            f"labels {plane_labels.shape} and image {base.shape[:2]} do not overlay"
        )
    gray = base if base.ndim == 2 else base[..., :3].mean(axis=-1).astype(np.uint8)
    tinted = label2rgb(plane_labels, image=gray, alpha=alpha, bg_label=0, image_alpha=1.0)
    rgb = (np.clip(tinted, 0, 1) * 255).astype(np.uint8)
    rgb[find_boundaries(plane_labels, mode="inner")] = (255, 220, 0)
    return rgb


def size_column(table: pd.DataFrame) -> str | None:
    """The column a person would histogram first: area or volume in physical units."""
    for prefix in ("area_", "volume_", "equivalent_diameter_"):
        calibrated = [c for c in table.columns if c.startswith(prefix) and not c.endswith("_px")]
        if calibrated:
            return calibrated[0]
        plain = [c for c in table.columns if c.startswith(prefix)]
        if plain:
            return plain[0]
    numeric = [c for c in table.select_dtypes("number").columns if c != "label"]
    return numeric[0] if numeric else None


def histogram_png(table: pd.DataFrame, path: Path, *, column: str | None = None) -> Path | None:
    """Histogram of one column (by default the object size) written as a PNG."""
    column = column or size_column(table)
    if column is None or table.empty:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = pd.to_numeric(table[column], errors="coerce").dropna()
    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=100)
    ax.hist(values, bins=min(30, max(5, len(values) // 4)), color="#3a7ca5", edgecolor="white")
    ax.axvline(values.median(), color="#d1495b", linestyle="--",
               label=f"median {values.median():.3g}")
    ax.set_xlabel(column)
    ax.set_ylabel("objects")
    ax.set_title(f"{column}: n = {len(values)}")
    ax.legend(frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def tracks_png(table: pd.DataFrame, path: Path) -> Path | None:
    """Trajectories of a tracks table (columns track id, frame, y, x) written as a PNG."""
    track_col = next((c for c in ("track_id", "track") if c in table.columns), None)
    ys = [c for c in table.columns if c.startswith(("centroid_y", "y"))]
    xs = [c for c in table.columns if c.startswith(("centroid_x", "x"))]
    if track_col is None or not ys or not xs or "frame" not in table.columns:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    for _, track in table.sort_values("frame").groupby(track_col):
        ax.plot(track[xs[0]], track[ys[0]], "-", linewidth=1)
    ax.invert_yaxis()
    ax.set_aspect("equal")
    ax.set_title(f"{table[track_col].nunique()} tracks")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
