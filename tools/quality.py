"""Segmentation quality: compare a label image with a reference (ground truth) label image.

Two kinds of scores:

* **Pixel scores** look at foreground versus background only: pixel accuracy (fraction of
  pixels on the right side), Jaccard index (intersection over union of the two foregrounds)
  and Dice coefficient (2|A∩B| / (|A| + |B|)).
* **Object scores** match objects one-to-one (Hungarian assignment on their IoU) and count a
  match as a true positive when its IoU reaches a threshold: precision, recall, F1, and the
  average precision TP / (TP + FP + FN) averaged over IoU thresholds 0.5, 0.55, ..., 0.95 (as in
  the 2018 Data Science Bowl and StarDist).

Why pixel accuracy misleads: in a fluorescence image where nuclei cover 1% of the pixels, a
prediction with no objects at all is right on the 99% background pixels, so its accuracy is
0.99, while its Jaccard index, Dice and recall are 0. Accuracy rewards the background; use
Jaccard/Dice for pixels and F1 or average precision for objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

import numpy as np
import pandas as pd
from annotated_types import Ge, Le
from scipy.optimize import linear_sum_assignment

from tools.checks import check_labels, check_same_shape
from tools.errors import InputError
from tools.registry import tool
from tools.types import Labels, Table

__all__ = [
    "DEFAULT_THRESHOLDS",
    "average_precision",
    "iou_matrix",
    "match_objects",
    "pixel_scores",
    "segmentation_quality",
]

DEFAULT_THRESHOLDS = tuple(np.round(np.arange(0.5, 0.96, 0.05), 2).tolist())


def _check_pair(labels: np.ndarray, reference: np.ndarray) -> None:
    check_labels(labels, name="labels")
    check_labels(reference, name="reference")
    check_same_shape(labels, reference, names=("labels", "reference"))


def _ratio(num: float, den: float) -> float:
    """num / den, and 0 when den is 0 (no object to score), as stardist does."""
    return float(num) / float(den) if den else 0.0


def iou_matrix(
    reference: np.ndarray, labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Intersection over union of every reference object with every predicted object.

    Parameters
    ----------
    reference, labels : np.ndarray
        Integer label images of the same shape (0 background; ids need not be consecutive).

    Returns
    -------
    iou : np.ndarray
        ``(n_reference, n_labels)`` float array.
    reference_ids, label_ids : np.ndarray
        The object id of each row and column.
    """
    ref_ids, ref_idx = np.unique(reference, return_inverse=True)
    lab_ids, lab_idx = np.unique(labels, return_inverse=True)
    # Index 0 is background only when the image has background pixels.
    ref_shift = int(ref_ids[0] == 0)
    lab_shift = int(lab_ids[0] == 0)
    joint = np.bincount(
        ref_idx.ravel().astype(np.int64) * len(lab_ids) + lab_idx.ravel(),
        minlength=len(ref_ids) * len(lab_ids),
    ).reshape(len(ref_ids), len(lab_ids))
    ref_area = joint.sum(axis=1)
    lab_area = joint.sum(axis=0)
    inter = joint[ref_shift:, lab_shift:].astype(np.float64)
    union = ref_area[ref_shift:, None] + lab_area[None, lab_shift:] - inter
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    return iou, ref_ids[ref_shift:], lab_ids[lab_shift:]


def _assign(iou: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one matching with the most pairs at IoU >= threshold, then the highest IoU."""
    if iou.size == 0:
        return np.zeros(0, int), np.zeros(0, int)
    eligible = iou >= threshold
    # Each eligible pair is worth 1 plus a tie-breaking bonus below 1 in total, so the number
    # of matches is maximised first and their summed IoU second.
    gain = eligible * (1.0 + iou / (min(iou.shape) + 1))
    rows, cols = linear_sum_assignment(gain, maximize=True)
    keep = eligible[rows, cols]
    return rows[keep], cols[keep]


def match_objects(
    labels: np.ndarray, reference: np.ndarray, iou_threshold: float = 0.5
) -> pd.DataFrame:
    """Pairs of matched objects, one-to-one, with their IoU.

    Parameters
    ----------
    labels : np.ndarray
        Predicted label image.
    reference : np.ndarray
        Reference (ground truth) label image of the same shape.
    iou_threshold : float
        Smallest IoU of a match.

    Returns
    -------
    pd.DataFrame
        Columns ``reference_label``, ``label``, ``iou``, one row per match.
    """
    _check_pair(labels, reference)
    iou, ref_ids, lab_ids = iou_matrix(reference, labels)
    rows, cols = _assign(iou, iou_threshold)
    return pd.DataFrame(
        {"reference_label": ref_ids[rows], "label": lab_ids[cols], "iou": iou[rows, cols]}
    )


def pixel_scores(labels: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """Foreground/background agreement: pixel accuracy, Jaccard index, Dice coefficient.

    Parameters
    ----------
    labels : np.ndarray
        Predicted label (or binary) image.
    reference : np.ndarray
        Reference label (or binary) image of the same shape.

    Returns
    -------
    dict
        ``pixel_accuracy``, ``jaccard``, ``dice`` and ``background_fraction`` (of the
        reference). Jaccard and Dice are 1 when both foregrounds are empty.

    Examples
    --------
    Objects on 1% of the image and an empty prediction: 99% accuracy, Jaccard 0.

    >>> reference = np.zeros((100, 100), int)
    >>> reference[:10, :10] = 1
    >>> scores = pixel_scores(np.zeros_like(reference), reference)
    >>> round(scores["pixel_accuracy"], 2), scores["jaccard"]
    (0.99, 0.0)
    """
    _check_pair(labels, reference)
    pred = labels > 0
    true = reference > 0
    inter = int(np.count_nonzero(pred & true))
    union = int(np.count_nonzero(pred | true))
    total = int(np.count_nonzero(pred)) + int(np.count_nonzero(true))
    return {
        "pixel_accuracy": float(np.count_nonzero(pred == true)) / pred.size,
        "jaccard": inter / union if union else 1.0,
        "dice": 2 * inter / total if total else 1.0,
        "background_fraction": float(np.count_nonzero(~true)) / true.size,
    }


def _object_scores(iou: np.ndarray, threshold: float) -> dict[str, Any]:
    n_true, n_pred = iou.shape
    rows, cols = _assign(iou, threshold)
    tp = len(rows)
    fp, fn = n_pred - tp, n_true - tp
    matched = iou[rows, cols]
    return {
        "threshold": float(threshold),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "average_precision": _ratio(tp, tp + fp + fn),
        "mean_matched_iou": float(matched.mean()) if tp else 0.0,
        "n_true": n_true,
        "n_pred": n_pred,
    }


def _check_thresholds(thresholds: Sequence[float]) -> list[float]:
    values = [float(t) for t in thresholds]
    if not values:
        raise InputError("give at least one IoU threshold")
    if any(not 0.0 < t <= 1.0 for t in values):
        raise InputError(f"IoU thresholds must be in (0, 1], got {values}")
    return values


@tool(category="quality", output_names=("average_precision",))
def average_precision(
    labels: Labels,
    reference: Labels,
    thresholds: list[Annotated[float, Ge(0.05), Le(1.0)]] | None = None,
) -> Table:
    """Object-level precision, recall, F1 and average precision at several IoU thresholds.

    Objects of the two label images are matched one-to-one by the Hungarian algorithm on
    their intersection over union (IoU); a match counts when its IoU reaches the threshold.
    Average precision at a threshold is TP / (TP + FP + FN).

    Parameters
    ----------
    labels : ([P, ]M, N) ndarray of int
        Predicted instance label image, 2D or 3D.
    reference : ([P, ]M, N) ndarray of int
        Reference (ground truth) instance label image of the same shape.
    thresholds : list of float, optional
        IoU thresholds; 0.5, 0.55, ..., 0.95 by default.

    Returns
    -------
    scores : DataFrame
        One row per threshold: ``threshold``, ``tp``, ``fp``, ``fn``, ``precision``,
        ``recall``, ``f1``, ``average_precision``, ``mean_matched_iou``, ``n_true``,
        ``n_pred``.

    References
    ----------
    .. [1] H. W. Kuhn, "The Hungarian method for the assignment problem," Nav. Res. Logist. Q.
           2, 83-97 (1955).
    .. [2] J. C. Caicedo et al., "Nucleus segmentation across imaging experiments: the 2018
           Data Science Bowl," Nat. Methods 16, 1247-1253 (2019).

    Examples
    --------
    >>> import numpy as np
    >>> from tools.quality import average_precision
    >>> reference = np.zeros((20, 20), dtype=np.int32)
    >>> reference[2:8, 2:8] = 1
    >>> reference[10:16, 10:16] = 2
    >>> predicted = reference.copy()
    >>> predicted[predicted == 2] = 0  # one object missed
    >>> scores = average_precision(predicted, reference, thresholds=[0.5])
    >>> scores[["tp", "fn", "average_precision"]].iloc[0].tolist()
    [1.0, 1.0, 0.5]
    """
    _check_pair(labels, reference)
    values = _check_thresholds(thresholds if thresholds is not None else DEFAULT_THRESHOLDS)
    iou, _, _ = iou_matrix(reference, labels)
    return pd.DataFrame([_object_scores(iou, t) for t in values])


@tool(category="quality")
def segmentation_quality(
    labels: Labels,
    reference: Labels,
    iou_threshold: Annotated[float, Ge(0.05), Le(1.0)] = 0.5,
) -> dict[str, float]:
    """Score a segmentation against a reference: object F1 and AP, pixel Jaccard and accuracy.

    Objects are matched one-to-one on intersection over union (IoU). Pixel accuracy is
    reported beside the Jaccard index on purpose: when background dominates, an empty
    prediction still scores a high accuracy (99% if objects cover 1% of the image) while its
    Jaccard index is 0. Judge a segmentation by F1, average precision and Jaccard.

    Parameters
    ----------
    labels : ([P, ]M, N) ndarray of int
        Predicted instance label image, 2D or 3D.
    reference : ([P, ]M, N) ndarray of int
        Reference (ground truth) instance label image of the same shape.
    iou_threshold : float
        Smallest IoU for two objects to count as a match.

    Returns
    -------
    scores : dict
        ``n_true``, ``n_pred``, ``tp``, ``fp``, ``fn``, ``precision``, ``recall``, ``f1``,
        ``mean_matched_iou`` at ``iou_threshold``; ``mean_average_precision`` over IoU
        0.5-0.95; ``pixel_accuracy``, ``jaccard``, ``dice``, ``background_fraction``.

    References
    ----------
    .. [1] J. C. Caicedo et al., "Nucleus segmentation across imaging experiments: the 2018
           Data Science Bowl," Nat. Methods 16, 1247-1253 (2019).

    Examples
    --------
    An empty prediction scores a high pixel accuracy and a Jaccard index of 0:

    >>> import numpy as np
    >>> from tools.quality import segmentation_quality
    >>> reference = np.zeros((100, 100), dtype=np.int32)
    >>> reference[10:20, 10:20] = 1
    >>> scores = segmentation_quality(np.zeros_like(reference), reference)
    >>> scores["pixel_accuracy"], scores["jaccard"], scores["f1"]
    (0.99, 0.0, 0.0)
    """
    _check_pair(labels, reference)
    if not 0.0 < iou_threshold <= 1.0:
        raise InputError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
    iou, _, _ = iou_matrix(reference, labels)
    scores = _object_scores(iou, iou_threshold)
    scores.pop("average_precision")
    scores["iou_threshold"] = scores.pop("threshold")
    scores["mean_average_precision"] = float(
        np.mean([_object_scores(iou, t)["average_precision"] for t in DEFAULT_THRESHOLDS])
    )
    scores.update(pixel_scores(labels, reference))
    return scores
