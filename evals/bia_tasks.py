"""The bio-image-analysis coding tasks of the code-correctness benchmark, in readable form.

Each task is a HumanEval-style problem: a prompt (imports, signature, docstring), a canonical
solution (the function body) and a ``check(candidate)`` with assertions on seeded synthetic data
whose right answer is known by construction. ``python -m evals.bia_tasks`` writes them to
``evals/data/bia_humaneval.jsonl``; a test keeps the two in step.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from evals.humaneval import DEFAULT_PROBLEMS, write_jsonl

_TASKS: list[tuple[str, str, str, str]] = []
"""(entry_point, prompt, canonical solution, test)."""


def _task(entry_point: str, prompt: str, solution: str, test: str) -> None:
    _TASKS.append((entry_point, textwrap.dedent(prompt).lstrip("\n"),
                   textwrap.indent(textwrap.dedent(solution).strip("\n"), "    ") + "\n",
                   textwrap.dedent(test).strip("\n") + "\n"))


_task("count_objects_above_size", '''
import numpy as np
from skimage import measure


def count_objects_above_size(mask: np.ndarray, min_area: int) -> int:
    """Count the 8-connected foreground objects of a binary 2D mask whose area (in pixels) is
    at least `min_area`."""
''', '''
labels = measure.label(mask > 0, connectivity=2)
areas = np.bincount(labels.ravel())[1:]
return int(np.sum(areas >= min_area))
''', '''
def check(candidate):
    import numpy as np
    m = np.zeros((40, 40), bool)
    m[2:4, 2:4] = True          # area 4
    m[10:15, 10:15] = True      # area 25
    m[20:30, 20:30] = True      # area 100
    m[35, 35] = True            # area 1
    m[36, 36] = True            # diagonal neighbour: same 8-connected object, area 2
    assert candidate(m, 1) == 4
    assert candidate(m, 4) == 3
    assert candidate(m, 25) == 2
    assert candidate(m, 26) == 1
    assert candidate(np.zeros((5, 5), bool), 1) == 0
''')

_task("otsu_label", '''
import numpy as np
from skimage import filters, measure


def otsu_label(image: np.ndarray) -> np.ndarray:
    """Threshold a 2D image with Otsu's method (foreground: pixels strictly above the
    threshold) and return 8-connected labels (int array, 0 = background, 1..n objects)."""
''', '''
threshold = filters.threshold_otsu(image)
return measure.label(image > threshold, connectivity=2)
''', '''
def check(candidate):
    import numpy as np
    rng = np.random.default_rng(0)
    img = rng.normal(10, 1, (64, 64))
    img[5:15, 5:15] += 50
    img[30:40, 30:45] += 50
    img[50:60, 2:8] += 50
    lab = candidate(img)
    assert lab.shape == img.shape
    assert np.issubdtype(lab.dtype, np.integer)
    assert lab.max() == 3
    assert len(np.unique(lab)) == 4
    assert lab[10, 10] != 0 and lab[35, 40] != 0 and lab[0, 63] == 0
    assert lab[10, 10] != lab[35, 40]
''')

_task("mean_intensity_per_label", '''
import numpy as np


def mean_intensity_per_label(image: np.ndarray, labels: np.ndarray) -> dict:
    """Mean intensity of `image` inside each nonzero label of `labels`, as {label: mean}
    with int keys and float values. Labels absent from the image are not listed."""
''', '''
result = {}
for value in np.unique(labels):
    if value == 0:
        continue
    result[int(value)] = float(image[labels == value].mean())
return result
''', '''
def check(candidate):
    import numpy as np
    img = np.arange(16, dtype=float).reshape(4, 4)
    lab = np.zeros((4, 4), int)
    lab[0, :2] = 3
    lab[3, :] = 7
    out = candidate(img, lab)
    assert set(out) == {3, 7}
    assert abs(out[3] - 0.5) < 1e-9
    assert abs(out[7] - 13.5) < 1e-9
    assert candidate(img, np.zeros((4, 4), int)) == {}
''')

_task("physical_areas", '''
import numpy as np


def physical_areas(labels: np.ndarray, pixel_size_um: tuple) -> dict:
    """Area in square micrometres of each nonzero label of a 2D label image, given the pixel
    size as (size_y_um, size_x_um). Return {label: area} with int keys."""
''', '''
py, px = pixel_size_um
ids, counts = np.unique(labels[labels != 0], return_counts=True)
return {int(i): float(c) * py * px for i, c in zip(ids, counts)}
''', '''
def check(candidate):
    import numpy as np
    lab = np.zeros((20, 20), int)
    lab[0:10, 0:10] = 1
    lab[15:17, 15:20] = 4
    out = candidate(lab, (0.5, 0.25))
    assert set(out) == {1, 4}
    assert abs(out[1] - 100 * 0.125) < 1e-9
    assert abs(out[4] - 10 * 0.125) < 1e-9
    out2 = candidate(lab, (2.0, 2.0))
    assert abs(out2[1] - 400.0) < 1e-9
''')

_task("mask_iou", '''
import numpy as np


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two binary masks (nonzero = foreground). Two empty masks
    have an IoU of 1.0."""
''', '''
a = a != 0
b = b != 0
union = np.logical_or(a, b).sum()
if union == 0:
    return 1.0
return float(np.logical_and(a, b).sum() / union)
''', '''
def check(candidate):
    import numpy as np
    a = np.zeros((10, 10), bool); a[0:5, 0:5] = True
    b = np.zeros((10, 10), bool); b[0:5, 2:7] = True
    assert abs(candidate(a, b) - 15 / 35) < 1e-9
    assert candidate(a, a) == 1.0
    assert candidate(a, ~a) == 0.0
    assert candidate(np.zeros((3, 3)), np.zeros((3, 3))) == 1.0
    assert abs(candidate(a.astype(np.uint8) * 255, b.astype(int) * 3) - 15 / 35) < 1e-9
''')

_task("max_projection", '''
import numpy as np


def max_projection(stack: np.ndarray, axis: int = 0) -> np.ndarray:
    """Maximum intensity projection of an image stack along `axis`, keeping the dtype."""
''', '''
return np.max(stack, axis=axis)
''', '''
def check(candidate):
    import numpy as np
    rng = np.random.default_rng(1)
    s = rng.integers(0, 4000, (5, 8, 9)).astype(np.uint16)
    s[3, 2, 2] = 65000
    p = candidate(s)
    assert p.shape == (8, 9) and p.dtype == np.uint16
    assert p[2, 2] == 65000
    assert np.array_equal(p, s.max(0))
    assert candidate(s, axis=2).shape == (5, 8)
''')

_task("normalize_percentile", '''
import numpy as np


def normalize_percentile(image: np.ndarray, low: float = 1.0, high: float = 99.8) -> np.ndarray:
    """Rescale intensities so that the `low` percentile maps to 0 and the `high` percentile to
    1, clipping to [0, 1]. Return float64. A constant image maps to all zeros."""
''', '''
lo, hi = np.percentile(image, [low, high])
if hi <= lo:
    return np.zeros(image.shape, dtype=np.float64)
return np.clip((image.astype(np.float64) - lo) / (hi - lo), 0.0, 1.0)
''', '''
def check(candidate):
    import numpy as np
    img = np.arange(1000, dtype=np.uint16).reshape(10, 100)
    out = candidate(img, 0, 100)
    assert out.dtype == np.float64
    assert out.min() == 0.0 and out.max() == 1.0
    assert abs(out[0, 1] - 1 / 999) < 1e-12
    out2 = candidate(img, 10, 90)
    lo, hi = np.percentile(img, [10, 90])
    assert abs(out2[5, 0] - (500 - lo) / (hi - lo)) < 1e-12
    assert (out2 == 0).sum() >= 99 and (out2 == 1).sum() >= 99
    assert not candidate(np.full((4, 4), 7)).any()
''')

_task("remove_border_objects", '''
import numpy as np


def remove_border_objects(labels: np.ndarray) -> np.ndarray:
    """Set to 0 every label that touches the image border (first/last row or column of a 2D
    label image). Other labels keep their values."""
''', '''
edge = np.concatenate([labels[0, :], labels[-1, :], labels[:, 0], labels[:, -1]])
out = labels.copy()
out[np.isin(out, edge[edge != 0])] = 0
return out
''', '''
def check(candidate):
    import numpy as np
    lab = np.zeros((10, 10), int)
    lab[0:3, 4:6] = 1
    lab[4:6, 4:6] = 2
    lab[7:10, 7:9] = 3
    lab[3:5, 0:2] = 5
    lab[2, 2] = 6
    out = candidate(lab)
    assert set(np.unique(out)) == {0, 2, 6}
    assert (out[4:6, 4:6] == 2).all()
    assert lab[0, 4] == 1  # input untouched
''')

_task("centroid_distance_matrix", '''
import numpy as np
from scipy.spatial.distance import cdist
from skimage import measure


def centroid_distance_matrix(labels: np.ndarray) -> np.ndarray:
    """Pairwise Euclidean distances (in pixels) between the centroids of the labels of a 2D
    label image, rows and columns in increasing label order."""
''', '''
props = sorted(measure.regionprops(labels), key=lambda r: r.label)
points = np.array([r.centroid for r in props]).reshape(-1, 2)
return cdist(points, points)
''', '''
def check(candidate):
    import numpy as np
    lab = np.zeros((30, 30), int)
    lab[9:12, 9:12] = 5     # centroid (10, 10)
    lab[0:1, 0:1] = 2       # centroid (0, 0)
    lab[13:16, 13:16] = 9   # centroid (14, 14)
    d = candidate(lab)
    assert d.shape == (3, 3)
    assert np.allclose(np.diag(d), 0)
    assert abs(d[0, 1] - np.hypot(10, 10)) < 1e-9
    assert abs(d[1, 2] - np.hypot(4, 4)) < 1e-9
    assert np.allclose(d, d.T)
''')

_task("nearest_neighbor_distances", '''
import numpy as np


def nearest_neighbor_distances(points: np.ndarray) -> np.ndarray:
    """For each of N points (array of shape (N, D)), the Euclidean distance to the closest
    other point. Return an array of shape (N,). Needs N >= 2."""
''', '''
from scipy.spatial import cKDTree
tree = cKDTree(points)
distances, _ = tree.query(points, k=2)
return distances[:, 1]
''', '''
def check(candidate):
    import numpy as np
    pts = np.array([[0, 0], [0, 3], [4, 0], [10, 10]], float)
    d = candidate(pts)
    assert d.shape == (4,)
    assert np.allclose(d, [3, 3, 4, np.hypot(6, 10)])
    rng = np.random.default_rng(3)
    p = rng.random((50, 3))
    full = np.sqrt(((p[:, None] - p[None]) ** 2).sum(-1)) + np.eye(50) * 1e9
    assert np.allclose(candidate(p), full.min(1))
''')

_task("dice_coefficient", '''
import numpy as np


def dice_coefficient(a: np.ndarray, b: np.ndarray) -> float:
    """Dice coefficient 2|A and B| / (|A| + |B|) of two binary masks (nonzero = foreground);
    1.0 when both are empty."""
''', '''
a = a != 0
b = b != 0
total = a.sum() + b.sum()
if total == 0:
    return 1.0
return float(2 * np.logical_and(a, b).sum() / total)
''', '''
def check(candidate):
    import numpy as np
    a = np.zeros((10, 10), bool); a[:4, :4] = True
    b = np.zeros((10, 10), bool); b[:4, 2:6] = True
    assert abs(candidate(a, b) - 2 * 8 / 32) < 1e-9
    assert candidate(a, np.zeros_like(a)) == 0.0
    assert candidate(np.zeros((2, 2)), np.zeros((2, 2))) == 1.0
''')

_task("relabel_sequential", '''
import numpy as np


def relabel_sequential(labels: np.ndarray) -> np.ndarray:
    """Renumber the nonzero labels to 1..n keeping their order (the smallest old label
    becomes 1). Background stays 0; the result has the input's shape."""
''', '''
ids = np.unique(labels)
ids = ids[ids != 0]
lut = np.zeros(int(labels.max()) + 1 if labels.size else 1, dtype=np.int64)
lut[ids] = np.arange(1, len(ids) + 1)
return lut[labels]
''', '''
def check(candidate):
    import numpy as np
    lab = np.array([[0, 5, 5], [9, 0, 2], [2, 9, 0]])
    out = candidate(lab)
    assert out.tolist() == [[0, 2, 2], [3, 0, 1], [1, 3, 0]]
    assert candidate(np.zeros((2, 2), int)).max() == 0
''')

_task("count_spots", '''
import numpy as np
from skimage.feature import peak_local_max
from skimage.filters import gaussian


def count_spots(image: np.ndarray, sigma: float, threshold: float, min_distance: int) -> int:
    """Count bright spots: smooth with a Gaussian of `sigma`, then count local maxima that are
    above the absolute `threshold` (in smoothed intensity) and at least `min_distance` pixels
    apart."""
''', '''
smooth = gaussian(image.astype(float), sigma=sigma, preserve_range=True)
peaks = peak_local_max(smooth, min_distance=min_distance, threshold_abs=threshold)
return int(len(peaks))
''', '''
def check(candidate):
    import numpy as np
    yy, xx = np.mgrid[:100, :100]
    img = np.zeros((100, 100))
    centres = [(20, 20), (20, 70), (60, 40), (85, 85), (50, 90)]
    for cy, cx in centres:
        img += 100 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * 3.0 ** 2))
    img += np.random.default_rng(4).normal(0, 1, img.shape)
    assert candidate(img, 1.5, 30, 5) == 5
    assert candidate(img, 1.5, 200, 5) == 0
    img2 = img.copy(); img2[55:, :] = 0
    assert candidate(img2, 1.5, 30, 5) == 3
''')

_task("fill_holes_per_object", '''
import numpy as np
from scipy import ndimage as ndi


def fill_holes_per_object(labels: np.ndarray) -> np.ndarray:
    """Fill the holes inside each labelled object of a 2D label image with that object's
    label. Existing labels are unchanged."""
''', '''
out = labels.copy()
for value in np.unique(labels):
    if value == 0:
        continue
    filled = ndi.binary_fill_holes(labels == value)
    out[filled & (out == 0)] = value
return out
''', '''
def check(candidate):
    import numpy as np
    lab = np.zeros((12, 20), int)
    lab[1:8, 1:8] = 1; lab[3:5, 3:5] = 0
    lab[1:8, 10:17] = 2; lab[4, 13] = 0
    out = candidate(lab)
    assert (out[1:8, 1:8] == 1).all()
    assert (out[1:8, 10:17] == 2).all()
    assert out[10, 5] == 0
    assert lab[3, 3] == 0
''')

_task("bounding_boxes", '''
import numpy as np
from scipy import ndimage as ndi


def bounding_boxes(labels: np.ndarray) -> dict:
    """Bounding box of each nonzero label of a 2D label image as
    {label: (min_row, min_col, max_row, max_col)} with max exclusive (slice stops)."""
''', '''
out = {}
for index, found in enumerate(ndi.find_objects(labels), start=1):
    if found is None:
        continue
    rows, cols = found
    out[index] = (rows.start, cols.start, rows.stop, cols.stop)
return out
''', '''
def check(candidate):
    import numpy as np
    lab = np.zeros((10, 10), int)
    lab[2:5, 3:4] = 1
    lab[7, 1:9] = 3
    out = candidate(lab)
    assert out == {1: (2, 3, 5, 4), 3: (7, 1, 8, 9)}
''')

_task("largest_object", '''
import numpy as np
from skimage import measure


def largest_object(mask: np.ndarray) -> np.ndarray:
    """Boolean mask of the largest 4-connected object of a binary 2D mask (all False if the
    mask is empty)."""
''', '''
labels = measure.label(mask > 0, connectivity=1)
if labels.max() == 0:
    return np.zeros(mask.shape, dtype=bool)
areas = np.bincount(labels.ravel())
areas[0] = 0
return labels == np.argmax(areas)
''', '''
def check(candidate):
    import numpy as np
    m = np.zeros((10, 10), bool)
    m[0:3, 0:3] = True
    m[5:9, 5:9] = True
    m[4, 4] = True  # only diagonal contact: separate object with 4-connectivity
    out = candidate(m)
    assert out.dtype == bool
    assert out.sum() == 16 and out[6, 6] and not out[4, 4]
    assert not candidate(np.zeros((3, 3), bool)).any()
''')

_task("signal_to_noise", '''
import numpy as np


def signal_to_noise(image: np.ndarray, mask: np.ndarray) -> float:
    """Signal-to-noise ratio: (mean inside mask - mean outside) / standard deviation outside
    (population std, ddof=0)."""
''', '''
inside = image[mask != 0].astype(float)
outside = image[mask == 0].astype(float)
return float((inside.mean() - outside.mean()) / outside.std())
''', '''
def check(candidate):
    import numpy as np
    rng = np.random.default_rng(5)
    img = rng.normal(100, 5, (200, 200))
    m = np.zeros(img.shape, bool); m[50:150, 50:150] = True
    img[m] += 50
    snr = candidate(img, m)
    expected = (img[m].mean() - img[~m].mean()) / img[~m].std()
    assert abs(snr - expected) < 1e-9
    assert 9 < snr < 11
''')

_task("subtract_background", '''
import numpy as np


def subtract_background(image: np.ndarray, percentile: float = 10.0) -> np.ndarray:
    """Subtract the given intensity percentile of the whole image as a constant background and
    clip negative values to 0. Return float64."""
''', '''
background = np.percentile(image, percentile)
return np.clip(image.astype(np.float64) - background, 0, None)
''', '''
def check(candidate):
    import numpy as np
    img = np.arange(100, dtype=np.uint8).reshape(10, 10)
    out = candidate(img, 50)
    assert out.dtype == np.float64
    assert out.min() == 0
    assert abs(out.max() - (99 - 49.5)) < 1e-9
    assert abs(candidate(img)[9, 9] - (99 - np.percentile(img, 10))) < 1e-9
''')

_task("difference_of_gaussians", '''
import numpy as np
from scipy import ndimage as ndi


def difference_of_gaussians(image: np.ndarray, low_sigma: float, high_sigma: float) -> np.ndarray:
    """Band-pass filter: Gaussian blur with `low_sigma` minus Gaussian blur with `high_sigma`
    (scipy.ndimage.gaussian_filter, default mode), computed in float64."""
''', '''
data = image.astype(np.float64)
return ndi.gaussian_filter(data, low_sigma) - ndi.gaussian_filter(data, high_sigma)
''', '''
def check(candidate):
    import numpy as np
    from scipy import ndimage as ndi
    rng = np.random.default_rng(6)
    img = rng.integers(0, 255, (32, 32)).astype(np.uint8)
    out = candidate(img, 1, 4)
    assert out.dtype == np.float64
    ref = ndi.gaussian_filter(img.astype(float), 1) - ndi.gaussian_filter(img.astype(float), 4)
    assert np.allclose(out, ref)
    assert abs(candidate(np.full((16, 16), 9.0), 1, 3)).max() < 1e-9
''')

_task("keep_round_objects", '''
import numpy as np
from skimage import measure


def keep_round_objects(labels: np.ndarray, max_eccentricity: float) -> np.ndarray:
    """Keep only labels whose eccentricity (skimage regionprops) is at most
    `max_eccentricity`; set the others to 0."""
''', '''
out = labels.copy()
for region in measure.regionprops(labels):
    if region.eccentricity > max_eccentricity:
        out[labels == region.label] = 0
return out
''', '''
def check(candidate):
    import numpy as np
    from skimage.draw import disk, ellipse
    lab = np.zeros((80, 80), int)
    lab[disk((20, 20), 8)] = 1
    lab[ellipse(60, 50, 4, 15)] = 2
    out = candidate(lab, 0.5)
    assert set(np.unique(out)) == {0, 1}
    assert set(np.unique(candidate(lab, 0.99))) == {0, 1, 2}
''')

_task("match_counts", '''
import numpy as np


def match_counts(gt: np.ndarray, pred: np.ndarray, iou_threshold: float = 0.5) -> tuple:
    """Match ground-truth and predicted instance labels: a pair matches when its IoU is
    strictly above `iou_threshold` (>= 0.5 makes matches unique). Return (true positives,
    false positives, false negatives)."""
''', '''
gt_ids = [g for g in np.unique(gt) if g != 0]
pred_ids = [p for p in np.unique(pred) if p != 0]
tp = 0
for g in gt_ids:
    gm = gt == g
    for p in np.unique(pred[gm]):
        if p == 0:
            continue
        pm = pred == p
        iou = np.logical_and(gm, pm).sum() / np.logical_or(gm, pm).sum()
        if iou > iou_threshold:
            tp += 1
            break
return tp, len(pred_ids) - tp, len(gt_ids) - tp
''', '''
def check(candidate):
    import numpy as np
    gt = np.zeros((20, 20), int)
    gt[0:5, 0:5] = 1; gt[10:15, 10:15] = 2; gt[0:4, 15:19] = 3
    pred = np.zeros((20, 20), int)
    pred[0:5, 0:4] = 7          # IoU 0.8 with 1
    pred[10:12, 10:12] = 8      # IoU 0.16 with 2
    pred[18:20, 0:2] = 9        # nothing
    assert tuple(candidate(gt, pred)) == (1, 2, 2)
    assert tuple(candidate(gt, gt)) == (3, 0, 0)
    assert tuple(candidate(gt, pred, 0.9)) == (0, 3, 3)
''')

_task("f1_at_iou", '''
import numpy as np


def f1_at_iou(gt: np.ndarray, pred: np.ndarray, iou_threshold: float = 0.5) -> float:
    """F1 score of instance segmentation: objects match one-to-one when their IoU is strictly
    above `iou_threshold` (>= 0.5). F1 = 2 TP / (2 TP + FP + FN); 1.0 when both are empty."""
''', '''
gt_ids = [g for g in np.unique(gt) if g != 0]
pred_ids = [p for p in np.unique(pred) if p != 0]
if not gt_ids and not pred_ids:
    return 1.0
tp = 0
for g in gt_ids:
    gm = gt == g
    for p in np.unique(pred[gm]):
        if p == 0:
            continue
        pm = pred == p
        if np.logical_and(gm, pm).sum() / np.logical_or(gm, pm).sum() > iou_threshold:
            tp += 1
            break
fp = len(pred_ids) - tp
fn = len(gt_ids) - tp
return float(2 * tp / (2 * tp + fp + fn))
''', '''
def check(candidate):
    import numpy as np
    gt = np.zeros((20, 20), int)
    gt[0:5, 0:5] = 1; gt[10:15, 10:15] = 2
    pred = np.zeros((20, 20), int)
    pred[0:5, 0:4] = 3
    assert abs(candidate(gt, pred) - 2 / 3) < 1e-9
    assert candidate(gt, gt) == 1.0
    assert candidate(gt, np.zeros_like(gt)) == 0.0
    assert candidate(np.zeros((3, 3), int), np.zeros((3, 3), int)) == 1.0
''')

_task("line_profile", '''
import numpy as np
from scipy import ndimage as ndi


def line_profile(image: np.ndarray, start: tuple, end: tuple, n: int) -> np.ndarray:
    """Sample `n` equally spaced intensities along the straight line from `start` to `end`
    ((row, col) coordinates, both ends included) with linear interpolation."""
''', '''
rows = np.linspace(start[0], end[0], n)
cols = np.linspace(start[1], end[1], n)
return ndi.map_coordinates(image.astype(float), [rows, cols], order=1)
''', '''
def check(candidate):
    import numpy as np
    img = np.tile(np.arange(10, dtype=float), (5, 1))  # value = column
    p = candidate(img, (2, 0), (2, 9), 19)
    assert p.shape == (19,)
    assert np.allclose(p, np.linspace(0, 9, 19))
    q = candidate(img.T, (0, 1), (9, 1), 4)
    assert np.allclose(q, [0, 3, 6, 9])
''')

_task("best_focus_slice", '''
import numpy as np
from scipy import ndimage as ndi


def best_focus_slice(stack: np.ndarray) -> int:
    """Index of the sharpest slice of a (Z, Y, X) stack: the slice whose Laplacian
    (scipy.ndimage.laplace on float data) has the largest variance."""
''', '''
scores = [ndi.laplace(plane.astype(float)).var() for plane in stack]
return int(np.argmax(scores))
''', '''
def check(candidate):
    import numpy as np
    from scipy import ndimage as ndi
    rng = np.random.default_rng(7)
    sharp = (rng.random((64, 64)) > 0.5).astype(float) * 100
    stack = np.stack([ndi.gaussian_filter(sharp, s) for s in (4, 2, 0.5, 0, 1, 3)])
    assert candidate(stack) == 3
    assert candidate(stack[::-1]) == 2
''')

_task("objects_per_region", '''
import numpy as np
from skimage import measure


def objects_per_region(labels: np.ndarray, regions: np.ndarray) -> dict:
    """Count objects of `labels` per region of `regions` (both 2D label images of the same
    shape): an object belongs to the region under its centroid, rounded to the nearest pixel.
    Return {region: count} for every nonzero region value, including regions with 0 objects."""
''', '''
counts = {int(r): 0 for r in np.unique(regions) if r != 0}
for obj in measure.regionprops(labels):
    r, c = (int(round(v)) for v in obj.centroid)
    region = int(regions[r, c])
    if region != 0:
        counts[region] += 1
return counts
''', '''
def check(candidate):
    import numpy as np
    regions = np.zeros((20, 20), int)
    regions[:, :10] = 1; regions[:, 10:] = 2; regions[18:, :] = 3
    lab = np.zeros((20, 20), int)
    lab[2:4, 2:4] = 1; lab[6:8, 2:4] = 2; lab[2:4, 12:14] = 3
    lab[8:11, 8:11] = 4   # centroid (9, 9): region 1
    assert candidate(lab, regions) == {1: 3, 2: 1, 3: 0}
''')

_task("pearson_colocalization", '''
import numpy as np


def pearson_colocalization(channel_a: np.ndarray, channel_b: np.ndarray, mask: np.ndarray) -> float:
    """Pearson correlation coefficient between two channels over the pixels where `mask` is
    nonzero."""
''', '''
a = channel_a[mask != 0].astype(float)
b = channel_b[mask != 0].astype(float)
a = a - a.mean()
b = b - b.mean()
return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))
''', '''
def check(candidate):
    import numpy as np
    rng = np.random.default_rng(8)
    a = rng.random((50, 50))
    m = np.ones_like(a, bool)
    assert abs(candidate(a, 3 * a + 1, m) - 1) < 1e-9
    assert abs(candidate(a, -a, m) + 1) < 1e-9
    b = rng.random((50, 50))
    m2 = np.zeros_like(m); m2[:25] = True
    ref = np.corrcoef(a[m2], b[m2])[0, 1]
    assert abs(candidate(a, b, m2) - ref) < 1e-9
''')

_task("manders_coefficients", '''
import numpy as np


def manders_coefficients(channel_a: np.ndarray, channel_b: np.ndarray,
                         threshold_a: float, threshold_b: float) -> tuple:
    """Manders' coefficients (M1, M2): M1 is the fraction of the total intensity of A (over
    pixels where A > threshold_a) found in pixels where B > threshold_b; M2 symmetrically."""
''', '''
a = channel_a.astype(float)
b = channel_b.astype(float)
above_a = a > threshold_a
above_b = b > threshold_b
m1 = a[above_a & above_b].sum() / a[above_a].sum()
m2 = b[above_a & above_b].sum() / b[above_b].sum()
return float(m1), float(m2)
''', '''
def check(candidate):
    import numpy as np
    a = np.zeros((4, 4)); b = np.zeros((4, 4))
    a[0, 0] = 10; a[0, 1] = 30
    b[0, 1] = 5; b[2, 2] = 15
    m1, m2 = candidate(a, b, 0, 0)
    assert abs(m1 - 0.75) < 1e-9 and abs(m2 - 0.25) < 1e-9
    m1, m2 = candidate(a, b, 20, 0)
    assert abs(m1 - 1.0) < 1e-9 and abs(m2 - 0.25) < 1e-9
''')

_task("rescale_to_uint8", '''
import numpy as np


def rescale_to_uint8(image: np.ndarray) -> np.ndarray:
    """Linearly map the image minimum to 0 and maximum to 255, rounding to the nearest integer,
    as uint8. A constant image becomes all zeros."""
''', '''
data = image.astype(np.float64)
lo, hi = data.min(), data.max()
if hi == lo:
    return np.zeros(image.shape, dtype=np.uint8)
return np.round((data - lo) / (hi - lo) * 255).astype(np.uint8)
''', '''
def check(candidate):
    import numpy as np
    img = np.array([[100, 200], [300, 1100]], dtype=np.uint16)
    out = candidate(img)
    assert out.dtype == np.uint8
    assert out.tolist() == [[0, 26], [51, 255]]
    assert not candidate(np.full((3, 3), 5.0)).any()
''')

_task("bin_image", '''
import numpy as np


def bin_image(image: np.ndarray, factor: int) -> np.ndarray:
    """Downsample a 2D image by averaging non-overlapping `factor` x `factor` blocks; rows and
    columns that do not fill a whole block are dropped. Return float64."""
''', '''
h = image.shape[0] // factor * factor
w = image.shape[1] // factor * factor
blocks = image[:h, :w].astype(np.float64).reshape(h // factor, factor, w // factor, factor)
return blocks.mean(axis=(1, 3))
''', '''
def check(candidate):
    import numpy as np
    img = np.arange(36, dtype=np.uint8).reshape(6, 6)
    out = candidate(img, 2)
    assert out.shape == (3, 3) and out.dtype == np.float64
    assert out[0, 0] == (0 + 1 + 6 + 7) / 4
    out3 = candidate(np.ones((7, 8)), 3)
    assert out3.shape == (2, 2) and np.all(out3 == 1)
''')

_task("split_into_tiles", '''
import numpy as np


def split_into_tiles(image: np.ndarray, size: int) -> np.ndarray:
    """Cut a 2D image into non-overlapping `size` x `size` tiles in row-major order, dropping
    incomplete tiles at the right and bottom. Return an array of shape (n_tiles, size, size)."""
''', '''
rows = image.shape[0] // size
cols = image.shape[1] // size
tiles = [image[r * size:(r + 1) * size, c * size:(c + 1) * size]
         for r in range(rows) for c in range(cols)]
if not tiles:
    return np.zeros((0, size, size), dtype=image.dtype)
return np.stack(tiles)
''', '''
def check(candidate):
    import numpy as np
    img = np.arange(10 * 7).reshape(10, 7)
    t = candidate(img, 3)
    assert t.shape == (6, 3, 3)
    assert np.array_equal(t[1], img[0:3, 3:6])
    assert np.array_equal(t[2], img[3:6, 0:3])
    assert candidate(img, 11).shape[0] == 0
''')

_task("link_nearest", '''
import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist


def link_nearest(points_t0: np.ndarray, points_t1: np.ndarray, max_distance: float) -> list:
    """Link detections of two consecutive frames one-to-one minimising the total Euclidean
    distance; drop links longer than `max_distance`. Return sorted (i, j) index pairs."""
''', '''
if len(points_t0) == 0 or len(points_t1) == 0:
    return []
cost = cdist(points_t0, points_t1)
rows, cols = linear_sum_assignment(cost)
return sorted((int(i), int(j)) for i, j in zip(rows, cols) if cost[i, j] <= max_distance)
''', '''
def check(candidate):
    import numpy as np
    a = np.array([[0, 0], [10, 10], [50, 50]], float)
    b = np.array([[11, 10], [1, 0], [90, 90]], float)
    assert candidate(a, b, 5) == [(0, 1), (1, 0)]
    assert candidate(a, b, 100) == [(0, 1), (1, 0), (2, 2)]
    c = np.array([[0, 0], [2, 0]], float)
    d = np.array([[1.2, 0], [3.5, 0]], float)
    assert candidate(c, d, 10) == [(0, 0), (1, 1)]
    assert candidate(a, np.zeros((0, 2)), 5) == []
''')

_task("mean_squared_displacement", '''
import numpy as np


def mean_squared_displacement(track: np.ndarray) -> np.ndarray:
    """Mean squared displacement of one track of positions (array (T, D)) for time lags
    1..T-1, averaging over all pairs of frames that lag apart. Return shape (T-1,)."""
''', '''
track = np.asarray(track, dtype=float)
return np.array([((track[lag:] - track[:-lag]) ** 2).sum(axis=1).mean()
                 for lag in range(1, len(track))])
''', '''
def check(candidate):
    import numpy as np
    line = np.array([[0, 0], [1, 0], [2, 0], [3, 0]], float)
    assert np.allclose(candidate(line), [1, 4, 9])
    zig = np.array([[0, 0], [0, 1], [0, 0]], float)
    assert np.allclose(candidate(zig), [1, 0])
''')

_task("mean_speed", '''
import numpy as np


def mean_speed(track: np.ndarray, pixel_size_um: float, frame_interval_s: float) -> float:
    """Mean instantaneous speed in micrometres per minute of a track given in pixels
    (array (T, 2)), from the distances between consecutive frames."""
''', '''
steps = np.linalg.norm(np.diff(np.asarray(track, float), axis=0), axis=1)
return float(steps.mean() * pixel_size_um / frame_interval_s * 60.0)
''', '''
def check(candidate):
    import numpy as np
    t = np.array([[0, 0], [3, 4], [3, 4], [6, 8]], float)   # steps 5, 0, 5
    assert abs(candidate(t, 0.5, 30) - (10 / 3) * 0.5 / 30 * 60) < 1e-9
    assert candidate(np.zeros((5, 2)), 1, 1) == 0
''')

_task("circularity", '''
import numpy as np
from skimage import measure


def circularity(labels: np.ndarray) -> dict:
    """Circularity 4*pi*area/perimeter**2 of each label, using skimage regionprops `area` and
    `perimeter`. Return {label: value}."""
''', '''
return {int(r.label): float(4 * np.pi * r.area / r.perimeter ** 2)
        for r in measure.regionprops(labels)}
''', '''
def check(candidate):
    import numpy as np
    from skimage.draw import disk
    from skimage import measure
    lab = np.zeros((100, 100), int)
    lab[disk((30, 30), 20)] = 1
    lab[70:72, 10:90] = 2
    out = candidate(lab)
    assert set(out) == {1, 2}
    assert out[1] > 0.85 and out[2] < 0.2
    r = measure.regionprops(lab)[0]
    assert abs(out[1] - 4 * np.pi * r.area / r.perimeter ** 2) < 1e-9
''')

_task("grow_labels", '''
import numpy as np
from skimage.segmentation import expand_labels


def grow_labels(labels: np.ndarray, distance: int) -> np.ndarray:
    """Grow every label outwards by up to `distance` pixels without letting labels overlap
    (each background pixel within reach goes to the nearest label)."""
''', '''
return expand_labels(labels, distance=distance)
''', '''
def check(candidate):
    import numpy as np
    lab = np.zeros((1, 11), int)
    lab[0, 2] = 1; lab[0, 8] = 2
    out = candidate(lab, 2)
    assert out[0].tolist() == [1, 1, 1, 1, 1, 0, 2, 2, 2, 2, 2]
    out = candidate(lab, 5)
    assert (out != 0).all() and out[0, 4] == 1 and out[0, 6] == 2
''')

_task("split_touching", '''
import numpy as np
from scipy import ndimage as ndi
from skimage.feature import peak_local_max
from skimage.segmentation import watershed


def split_touching(mask: np.ndarray, min_distance: int) -> np.ndarray:
    """Split touching round objects of a binary mask: seeds at the local maxima of the
    Euclidean distance transform at least `min_distance` apart, then a watershed of the negated
    distance transform inside the mask. Return the labels."""
''', '''
distance = ndi.distance_transform_edt(mask)
peaks = peak_local_max(distance, min_distance=min_distance, labels=mask.astype(int),
                       exclude_border=False)
markers = np.zeros(mask.shape, dtype=np.int32)
markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
return watershed(-distance, markers, mask=mask)
''', '''
def check(candidate):
    import numpy as np
    from skimage.draw import disk
    m = np.zeros((60, 90), bool)
    m[disk((30, 30), 15)] = True
    m[disk((30, 55), 15)] = True
    m[disk((10, 80), 5)] = True
    out = candidate(m, 8)
    assert len(np.unique(out[out > 0])) == 3
    assert out[30, 25] != out[30, 60]
    assert ((out > 0) == m).all()
''')

_task("flat_field_correct", '''
import numpy as np


def flat_field_correct(image: np.ndarray, flat: np.ndarray, dark: np.ndarray) -> np.ndarray:
    """Flat-field correction: (image - dark) / (flat - dark) * mean(flat - dark), float64."""
''', '''
gain = flat.astype(np.float64) - dark
return (image.astype(np.float64) - dark) / gain * gain.mean()
''', '''
def check(candidate):
    import numpy as np
    yy, xx = np.mgrid[:32, :32]
    flat = 100 + 50 * xx / 31
    dark = np.full((32, 32), 10.0)
    scene = np.full((32, 32), 0.5)
    img = dark + scene * (flat - dark)
    out = candidate(img, flat, dark)
    assert out.dtype == np.float64
    assert np.allclose(out, out[0, 0])
    assert abs(out[0, 0] - 0.5 * (flat - dark).mean()) < 1e-9
''')

_task("nuclei_per_cell", '''
import numpy as np
from skimage import measure


def nuclei_per_cell(nuclei: np.ndarray, cells: np.ndarray) -> dict:
    """Number of nuclei in each cell: a nucleus belongs to the cell label found under its
    centroid (rounded). Return {cell label: count} for every nonzero cell label."""
''', '''
counts = {int(c): 0 for c in np.unique(cells) if c != 0}
for nucleus in measure.regionprops(nuclei):
    r, c = (int(round(v)) for v in nucleus.centroid)
    cell = int(cells[r, c])
    if cell:
        counts[cell] += 1
return counts
''', '''
def check(candidate):
    import numpy as np
    cells = np.zeros((30, 30), int)
    cells[0:15, 0:15] = 4; cells[0:15, 15:30] = 6; cells[20:30, 20:30] = 9
    nuc = np.zeros((30, 30), int)
    nuc[2:5, 2:5] = 1; nuc[8:11, 8:11] = 2; nuc[3:6, 20:23] = 3; nuc[17:19, 5:7] = 4
    assert candidate(nuc, cells) == {4: 2, 6: 1, 9: 0}
''')

_task("cytoplasm_rings", '''
import numpy as np
from skimage.segmentation import expand_labels


def cytoplasm_rings(nuclei: np.ndarray, width: int) -> np.ndarray:
    """Label image of rings around each nucleus: the nuclei grown by `width` pixels (without
    overlap, skimage expand_labels) minus the nuclei themselves; rings keep the nucleus label."""
''', '''
grown = expand_labels(nuclei, distance=width)
grown[nuclei != 0] = 0
return grown
''', '''
def check(candidate):
    import numpy as np
    nuc = np.zeros((30, 30), int)
    nuc[10:14, 10:14] = 3
    ring = candidate(nuc, 2)
    assert (ring[10:14, 10:14] == 0).all()
    assert ring[9, 11] == 3 and ring[8, 11] == 3 and ring[7, 11] == 0
    assert set(np.unique(ring)) == {0, 3}
    assert (ring == 3).sum() == 8 * 8 - 16 - 4 * (1 + 2)  # corners beyond distance 2 left out
''')

_task("mip_per_channel", '''
import numpy as np


def mip_per_channel(image: np.ndarray) -> np.ndarray:
    """Maximum intensity projection over Z of each channel of a (C, Z, Y, X) image; return
    (C, Y, X) with the input dtype."""
''', '''
return image.max(axis=1)
''', '''
def check(candidate):
    import numpy as np
    rng = np.random.default_rng(9)
    img = rng.integers(0, 255, (2, 4, 5, 6)).astype(np.uint8)
    out = candidate(img)
    assert out.shape == (2, 5, 6) and out.dtype == np.uint8
    assert np.array_equal(out[1], img[1].max(0))
''')

_task("weighted_centroids", '''
import numpy as np
from scipy import ndimage as ndi


def weighted_centroids(image: np.ndarray, labels: np.ndarray) -> dict:
    """Intensity-weighted centroid (row, col) of each nonzero label as {label: (row, col)}."""
''', '''
ids = [int(i) for i in np.unique(labels) if i != 0]
centres = ndi.center_of_mass(image.astype(float), labels, ids)
return {i: (float(c[0]), float(c[1])) for i, c in zip(ids, centres)}
''', '''
def check(candidate):
    import numpy as np
    img = np.zeros((10, 10)); lab = np.zeros((10, 10), int)
    lab[2, 2:5] = 1; img[2, 2:5] = [1, 0, 3]
    lab[7:9, 7] = 5; img[7:9, 7] = [1, 1]
    out = candidate(img, lab)
    assert set(out) == {1, 5}
    assert np.allclose(out[1], (2, 3.5))
    assert np.allclose(out[5], (7.5, 7))
''')

_task("filter_by_intensity", '''
import numpy as np


def filter_by_intensity(image: np.ndarray, labels: np.ndarray, min_mean: float) -> np.ndarray:
    """Keep labels whose mean intensity in `image` is at least `min_mean`; set others to 0."""
''', '''
out = labels.copy()
for value in np.unique(labels):
    if value != 0 and image[labels == value].mean() < min_mean:
        out[labels == value] = 0
return out
''', '''
def check(candidate):
    import numpy as np
    img = np.zeros((10, 10)); lab = np.zeros((10, 10), int)
    lab[0:2, 0:2] = 1; img[0:2, 0:2] = 10
    lab[5:7, 5:7] = 2; img[5:7, 5:7] = 4
    lab[8:10, 0:2] = 3; img[8:10, 0:2] = 5
    out = candidate(img, lab, 5)
    assert set(np.unique(out)) == {0, 1, 3}
    assert lab[5, 5] == 2
''')

_task("object_volumes", '''
import numpy as np


def object_volumes(labels: np.ndarray, spacing_zyx: tuple) -> dict:
    """Volume of each nonzero label of a 3D label image in cubic micrometres, given the voxel
    size (dz, dy, dx) in micrometres. Return {label: volume}."""
''', '''
voxel = float(np.prod(spacing_zyx))
ids, counts = np.unique(labels[labels != 0], return_counts=True)
return {int(i): float(c) * voxel for i, c in zip(ids, counts)}
''', '''
def check(candidate):
    import numpy as np
    lab = np.zeros((5, 10, 10), int)
    lab[0:2, 0:3, 0:3] = 1
    lab[4, 9, 9] = 2
    out = candidate(lab, (2.0, 0.5, 0.5))
    assert abs(out[1] - 18 * 0.5) < 1e-9 and abs(out[2] - 0.5) < 1e-9
''')

_task("count_objects_3d", '''
import numpy as np
from skimage import filters, measure


def count_objects_3d(volume: np.ndarray) -> int:
    """Count 26-connected objects in a 3D volume after Otsu thresholding (foreground: strictly
    above the threshold)."""
''', '''
return int(measure.label(volume > filters.threshold_otsu(volume), connectivity=3).max())
''', '''
def check(candidate):
    import numpy as np
    rng = np.random.default_rng(10)
    v = rng.normal(10, 1, (20, 30, 30))
    v[2:6, 2:6, 2:6] += 40
    v[10:15, 10:20, 10:20] += 40
    v[16:19, 25:29, 1:4] += 40
    v[6, 6, 6] += 40   # touches the first cube diagonally: same object
    assert candidate(v) == 3
''')

_task("saturated_fraction", '''
import numpy as np


def saturated_fraction(image: np.ndarray) -> float:
    """Fraction of pixels at the largest value the image's integer dtype can hold (e.g. 255
    for uint8, 65535 for uint16)."""
''', '''
return float(np.mean(image == np.iinfo(image.dtype).max))
''', '''
def check(candidate):
    import numpy as np
    a = np.zeros((10, 10), np.uint8); a[0, :5] = 255; a[1, 0] = 254
    assert abs(candidate(a) - 0.05) < 1e-12
    b = np.full((4, 4), 255, np.uint16)
    assert candidate(b) == 0.0
    b[0, 0] = 65535
    assert abs(candidate(b) - 1 / 16) < 1e-12
''')

_task("intensity_table", '''
import numpy as np
import pandas as pd
from skimage import measure


def intensity_table(image: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
    """One row per label with columns `label`, `area` (pixels), `mean_intensity`,
    `max_intensity`, sorted by label, with a fresh 0..n-1 index."""
''', '''
table = measure.regionprops_table(
    labels, intensity_image=image,
    properties=("label", "area", "intensity_mean", "intensity_max"))
frame = pd.DataFrame(table).rename(
    columns={"intensity_mean": "mean_intensity", "intensity_max": "max_intensity"})
return frame.sort_values("label").reset_index(drop=True)
''', '''
def check(candidate):
    import numpy as np
    img = np.arange(25, dtype=float).reshape(5, 5)
    lab = np.zeros((5, 5), int); lab[0, 0:2] = 8; lab[4, :] = 2
    t = candidate(img, lab)
    assert list(t.columns)[:4] == ["label", "area", "mean_intensity", "max_intensity"]
    assert t["label"].tolist() == [2, 8]
    assert t["area"].tolist() == [5, 2]
    assert np.allclose(t["mean_intensity"], [22, 0.5])
    assert np.allclose(t["max_intensity"], [24, 1])
    assert t.index.tolist() == [0, 1]
''')

_task("summarize_by_group", '''
import pandas as pd


def summarize_by_group(table: pd.DataFrame, group: str, column: str) -> pd.DataFrame:
    """Per value of `group`: the number of rows (`count`), the mean (`mean`) and the median
    (`median`) of `column`. Return a DataFrame indexed by the group values, sorted."""
''', '''
grouped = table.groupby(group)[column]
return pd.DataFrame({"count": grouped.size(), "mean": grouped.mean(),
                     "median": grouped.median()}).sort_index()
''', '''
def check(candidate):
    import pandas as pd
    t = pd.DataFrame({"well": ["B", "A", "A", "B", "A"], "area": [10, 1, 2, 30, 9]})
    out = candidate(t, "well", "area")
    assert out.index.tolist() == ["A", "B"]
    assert out["count"].tolist() == [3, 2]
    assert out["mean"].tolist() == [4, 20]
    assert out["median"].tolist() == [2, 20]
''')

_task("isotropic_zoom_factors", '''
def isotropic_zoom_factors(spacing_zyx: tuple) -> tuple:
    """Zoom factors (z, y, x) that resample a volume with voxel size `spacing_zyx` to isotropic
    voxels of the smallest of the three sizes."""
''', '''
finest = min(spacing_zyx)
return tuple(float(s) / finest for s in spacing_zyx)
''', '''
def check(candidate):
    assert tuple(candidate((2.0, 0.5, 0.5))) == (4.0, 1.0, 1.0)
    assert tuple(candidate((1.0, 1.0, 1.0))) == (1.0, 1.0, 1.0)
    assert tuple(candidate((0.3, 0.6, 0.6))) == (1.0, 2.0, 2.0)
''')

_task("label_touching_pairs", '''
import numpy as np


def label_touching_pairs(labels: np.ndarray) -> set:
    """Pairs of different nonzero labels that touch along a row or column (4-neighbourhood) in
    a 2D label image, as a set of (smaller, larger) tuples."""
''', '''
pairs = set()
for a, b in ((labels[:, :-1], labels[:, 1:]), (labels[:-1, :], labels[1:, :])):
    touching = (a != b) & (a != 0) & (b != 0)
    for x, y in zip(a[touching], b[touching]):
        pairs.add((int(min(x, y)), int(max(x, y))))
return pairs
''', '''
def check(candidate):
    import numpy as np
    lab = np.array([[1, 1, 2, 0],
                    [1, 0, 2, 3],
                    [4, 0, 0, 3],
                    [0, 5, 0, 0]])
    assert candidate(lab) == {(1, 2), (1, 4), (2, 3)}
    assert candidate(np.zeros((3, 3), int)) == set()
''')

_task("otsu_threshold_value", '''
import numpy as np


def otsu_threshold_value(image: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold computed from a histogram with `bins` equal bins between the image
    minimum and maximum, without scikit-image: return the bin centre maximising the
    between-class variance (foreground is everything above that centre)."""
''', '''
counts, edges = np.histogram(image.ravel(), bins=bins)
centres = (edges[:-1] + edges[1:]) / 2
weight1 = np.cumsum(counts)
weight2 = np.cumsum(counts[::-1])[::-1]
mean1 = np.cumsum(counts * centres) / np.maximum(weight1, 1)
mean2 = (np.cumsum((counts * centres)[::-1]) / np.maximum(weight2[::-1], 1))[::-1]
variance = weight1[:-1] * weight2[1:] * (mean1[:-1] - mean2[1:]) ** 2
return float(centres[np.argmax(variance)])
''', '''
def check(candidate):
    import numpy as np
    from skimage.filters import threshold_otsu
    rng = np.random.default_rng(11)
    img = np.concatenate([rng.normal(20, 3, 5000), rng.normal(80, 5, 3000)])
    t = candidate(img)
    assert abs(t - threshold_otsu(img)) < 0.5
    assert 25 < t < 65
    two = np.array([0.0] * 10 + [10.0] * 10)
    assert 0 <= candidate(two, 16) < 10
''')


def problems() -> list[dict[str, str]]:
    """The tasks as HumanEval records, numbered ``BIA/0``, ``BIA/1``, ..."""
    return [
        {"task_id": f"BIA/{i}", "prompt": prompt, "canonical_solution": solution,
         "entry_point": entry, "test": test}
        for i, (entry, prompt, solution, test) in enumerate(_TASKS)
    ]


def main(path: Path = DEFAULT_PROBLEMS) -> None:
    """Write the tasks to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count = write_jsonl(path, problems())
    print(f"wrote {count} tasks to {path}")


if __name__ == "__main__":
    main()
