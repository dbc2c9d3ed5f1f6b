"""Why touching blobs are missed: which cue each missed blob carries.

Run ``python -m evals.toolbench.clumps [--split design|heldout]``. On the overlap images of the
counting design set's ``blobs`` (:func:`evals.toolbench.counting.blob_settings`), every blob that
touches a neighbour and that no object of ``segment_objects(image)`` matches at IoU 0.5 is put in
one of these classes:

* ``no cue``: the distance map of the true mask has no maximum within half a radius of the
  blob's centre, and its brightness differs from its nearest neighbour's by less than 0.1;
* ``step only``: no such maximum, but a brightness step of at least 0.1;
* ``lost in the mask``: the true mask has that maximum, the distance map of the objects found
  (the threshold mask) has none;
* ``dropped by the seed rules``: both distance maps have a maximum there (3x3, plateaus as one).

The blobs whose maximum survives into the threshold mask show where the seed rules (depth,
spacing, smoothing of the distance map) are stricter than the geometry requires; ``no cue``
bounds what any splitter reading shape and brightness could find. Prints a table and writes
``results/toolbench/clumps_<split>.json``.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from evals.toolbench.counting import SEEDS, blob_settings
from evals.toolbench.results import machine, save_json

OUT = Path("results/toolbench")
CLASSES = ("no cue", "step only", "lost in the mask", "dropped by the seed rules")


def distance_maxima(mask: np.ndarray) -> np.ndarray:
    """Centres ``(n, 2)`` of the 3x3 maxima of ``mask``'s distance map, a plateau as one."""
    depth = ndi.distance_transform_edt(mask)
    top = (depth == ndi.maximum_filter(depth, size=3)) & mask
    groups, n = ndi.label(top, structure=np.ones((3, 3)))
    if n == 0:
        return np.empty((0, 2))
    return np.asarray(ndi.center_of_mass(top, groups, range(1, n + 1)))


def _near(points: np.ndarray, centre: np.ndarray, reach: float) -> bool:
    return bool(len(points)) and bool(np.any(np.linalg.norm(points - centre, axis=1) < reach))


def classify(split: str = "design") -> dict[str, Any]:
    """The class counts, and per image the touching and missed blobs, of one split."""
    from tools.segment import segment_objects
    from tools.synthetic import blobs

    totals: Counter[str] = Counter()
    rows = []
    for name, settings in blob_settings(split):
        if not settings["overlap"]:
            continue
        b = blobs(**settings)
        found = segment_objects(b.image)
        truth_peaks = distance_maxima(b.labels > 0)
        found_peaks = distance_maxima(found > 0)
        sizes = np.bincount(found.ravel())
        classes: Counter[str] = Counter()
        touching = 0
        for j in range(b.count):
            gap = np.linalg.norm(b.centers - b.centers[j], axis=1) - b.radii - b.radii[j]
            gap[j] = np.inf
            if gap.min() >= 1.0:
                continue
            touching += 1
            own = b.labels == j + 1
            ids, shared = np.unique(found[own], return_counts=True)
            iou = shared / (own.sum() + sizes[ids] - shared)
            if np.any((ids > 0) & (iou >= 0.5)):
                continue
            centre, reach = b.centers[j], 0.5 * b.radii[j]
            partner = int(np.argmin(gap))
            step = abs(float(np.median(b.image[own]))
                       - float(np.median(b.image[b.labels == partner + 1])))
            if not _near(truth_peaks, centre, reach):
                classes["step only" if step >= 0.1 else "no cue"] += 1
            elif _near(found_peaks, centre, reach):
                classes["dropped by the seed rules"] += 1
            else:
                classes["lost in the mask"] += 1
        totals.update(classes)
        totals["touching"] += touching
        rows.append({"image": name, "touching": touching, **{c: classes[c] for c in CLASSES}})
    return {"split": split, "machine": machine(), "touching": totals["touching"],
            "missed": sum(totals[c] for c in CLASSES),
            "classes": {c: totals[c] for c in CLASSES}, "rows": rows}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=tuple(SEEDS), default="design")
    args = parser.parse_args(argv)
    result = classify(args.split)
    print(f"{result['machine']}; split {args.split}: {result['touching']} touching blobs, "
          f"{result['missed']} not matched at IoU 0.5")
    for name, count in result["classes"].items():
        print(f"  {name:28} {count:4d}")
    save_json(OUT / f"clumps_{args.split}.json", result)


if __name__ == "__main__":
    main()
