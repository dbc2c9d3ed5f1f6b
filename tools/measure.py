"""Measurement: one table row per object, in physical units when the pixel size is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
from skimage.measure import regionprops_table

from tools.checks import check_image, check_labels, check_same_shape, check_spacing
from tools.errors import InputError
from tools.registry import tool
from tools.types import Image, Labels, PixelSize, Table


def unit_suffix(unit: str, power: int = 1) -> str:
    """Column-name suffix for a unit raised to ``power``: ``µm, 2 -> 'um2'``, pixels -> ``px``."""
    base = {"µm": "um", "pixel": "px"}.get(unit, unit.replace("µ", "u"))
    return f"{base}{power if power > 1 else ''}"


@tool(category="measure", output_names=("measurements",))
def measure_objects(
    labels: Labels, image: Image | None = None, pixel_size: PixelSize | None = None
) -> Table:
    """Measure size, shape, position and intensity of every labelled object.

    One row per object. Sizes are in physical units when the image's pixel size is known
    (column names carry the unit, e.g. ``area_um2``) and in pixels otherwise (``area_px``).

    Parameters
    ----------
    labels : Labels
        Instance label image, 2D or 3D (0 is background).
    image : Image, optional
        Intensity image of the same shape; adds mean, min, max, std and total intensity.

    Returns
    -------
    Table
        One row per label with area (or volume), centroid, equivalent diameter, axis lengths,
        solidity, extent and intensity statistics.
    """
    check_labels(labels)
    if not labels.any():
        raise InputError("the label image is empty (no objects); segment the image first")
    intensity = None
    if image is not None:
        intensity = check_image(image, name="image")
        check_same_shape(labels, intensity, names=("labels", "image"))
    px = pixel_size or PixelSize.unknown(labels.ndim)
    spacing = check_spacing(px.spacing, labels.ndim)
    unit = px.unit
    props = ["label", "area", "centroid", "equivalent_diameter_area", "axis_major_length",
             "axis_minor_length", "solidity", "extent"]
    if labels.ndim == 2:
        props += ["eccentricity", "perimeter"]
    if intensity is not None:
        props += ["intensity_mean", "intensity_min", "intensity_max", "intensity_std"]
    raw = pd.DataFrame(regionprops_table(labels, intensity, properties=props, spacing=spacing))
    size_name = "area" if labels.ndim == 2 else "volume"
    axes = "zyx"[-labels.ndim:]
    table = pd.DataFrame({"label": raw["label"].astype(int)})
    table[f"{size_name}_{unit_suffix(unit, labels.ndim)}"] = raw["area"]
    table[f"{size_name}_px"] = raw["area"] / float(np.prod(spacing))
    for i, axis in enumerate(axes):
        table[f"centroid_{axis}_{unit_suffix(unit)}"] = raw[f"centroid-{i}"]
    table[f"equivalent_diameter_{unit_suffix(unit)}"] = raw["equivalent_diameter_area"]
    table[f"major_axis_{unit_suffix(unit)}"] = raw["axis_major_length"]
    table[f"minor_axis_{unit_suffix(unit)}"] = raw["axis_minor_length"]
    if labels.ndim == 2:
        table[f"perimeter_{unit_suffix(unit)}"] = raw["perimeter"]
        table["eccentricity"] = raw["eccentricity"]
    table["solidity"] = raw["solidity"]
    table["extent"] = raw["extent"]
    if intensity is not None:
        table["mean_intensity"] = raw["intensity_mean"]
        table["std_intensity"] = raw["intensity_std"]
        table["min_intensity"] = raw["intensity_min"]
        table["max_intensity"] = raw["intensity_max"]
        # float64 sum: a uint16 image's totals overflow narrower integer types.
        table["total_intensity"] = raw["intensity_mean"].astype(np.float64) * table[
            f"{size_name}_px"
        ]
    return table


def summarize_table(table: pd.DataFrame) -> pd.DataFrame:
    """Count, mean, median and standard deviation of every numeric column except ``label``."""
    numeric = table.drop(columns=[c for c in ("label",) if c in table]).select_dtypes("number")
    return pd.DataFrame(
        {
            "count": numeric.count(),
            "mean": numeric.mean(),
            "median": numeric.median(),
            "std": numeric.std(),
        }
    )
