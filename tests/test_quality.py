"""Segmentation quality: agreement with stardist.matching, hand-made cases, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from tools.datasets import real_nuclei_2d
from tools.errors import InputError
from tools.quality import (
    average_precision,
    iou_matrix,
    match_objects,
    pixel_scores,
    segmentation_quality,
)
from tools.segment import voronoi_otsu_labeling

THRESHOLDS = [0.1, 0.3, 0.5, 0.7, 0.9]


@pytest.fixture(scope="module")
def nuclei():
    data = real_nuclei_2d()
    pred = voronoi_otsu_labeling(data.image, spot_sigma=2.0)
    return pred, data.labels


def test_agrees_with_stardist_matching_on_real_nuclei(nuclei):
    from stardist.matching import matching

    pred, truth = nuclei
    table = average_precision(pred, truth, thresholds=THRESHOLDS)
    for row in table.itertuples():
        ref = matching(truth, pred, thresh=row.threshold)
        assert (row.tp, row.fp, row.fn) == (ref.tp, ref.fp, ref.fn), row.threshold
        assert row.precision == pytest.approx(ref.precision)
        assert row.recall == pytest.approx(ref.recall)
        assert row.f1 == pytest.approx(ref.f1)
        assert row.average_precision == pytest.approx(ref.accuracy)  # stardist's "accuracy"
        assert (row.n_true, row.n_pred) == (ref.n_true, ref.n_pred)
        if row.threshold >= 0.5:  # matches are unique above 0.5: the same pairs
            assert row.mean_matched_iou == pytest.approx(ref.mean_matched_score, rel=1e-5)
        else:  # stardist's tie-break also weighs pairs below the threshold; ours does not
            assert row.mean_matched_iou >= ref.mean_matched_score - 1e-6
    assert 0.3 < table.set_index("threshold").loc[0.5, "f1"] < 0.95


def test_agrees_with_stardist_on_non_consecutive_labels(nuclei):
    from stardist.matching import matching

    pred, truth = nuclei
    gapped = np.where(pred > 0, pred * 3 + 100, 0)
    ours = segmentation_quality(gapped, truth)
    ref = matching(truth, gapped, thresh=0.5)
    assert (ours["tp"], ours["fp"], ours["fn"]) == (ref.tp, ref.fp, ref.fn)


def test_identical_images_score_perfectly(nuclei):
    _, truth = nuclei
    scores = segmentation_quality(truth, truth)
    assert scores["f1"] == 1.0 and scores["mean_average_precision"] == 1.0
    assert scores["jaccard"] == 1.0 and scores["dice"] == 1.0 and scores["pixel_accuracy"] == 1.0


def test_accuracy_misleads_when_background_dominates():
    reference = np.zeros((100, 100), np.int32)
    reference[:10, :10] = 1  # one object on 1% of the image
    empty = np.zeros_like(reference)
    scores = segmentation_quality(empty, reference)
    assert scores["pixel_accuracy"] == pytest.approx(0.99)
    assert scores["jaccard"] == 0.0 and scores["dice"] == 0.0
    assert scores["recall"] == 0.0 and scores["f1"] == 0.0
    assert scores["background_fraction"] == pytest.approx(0.99)


def test_hand_computed_iou_dice_and_matching():
    reference = np.zeros((10, 10), np.int32)
    reference[0:4, 0:4] = 1  # 16 px
    reference[6:10, 6:10] = 2  # 16 px
    pred = np.zeros_like(reference)
    pred[0:4, 1:5] = 7  # overlaps object 1 by 12: IoU 12 / 20 = 0.6
    pred[6:8, 6:10] = 8  # half of object 2: IoU 8 / 16 = 0.5
    iou, ref_ids, pred_ids = iou_matrix(reference, pred)
    assert list(ref_ids) == [1, 2] and list(pred_ids) == [7, 8]
    np.testing.assert_allclose(iou, [[0.6, 0.0], [0.0, 0.5]])
    pairs = match_objects(pred, reference, iou_threshold=0.55)
    assert pairs[["reference_label", "label"]].values.tolist() == [[1, 7]]
    scores = segmentation_quality(pred, reference, iou_threshold=0.5)
    assert (scores["tp"], scores["fp"], scores["fn"]) == (2, 0, 0)
    inter, union = 12 + 8, 16 + 16 + 4
    assert scores["jaccard"] == pytest.approx(inter / union)
    assert scores["dice"] == pytest.approx(2 * inter / (32 + 24))
    assert scores["pixel_accuracy"] == pytest.approx(1 - 16 / 100)


def test_one_to_one_matching_refuses_a_merge():
    reference = np.zeros((10, 20), np.int32)
    reference[:, :10] = 1
    reference[:, 10:] = 2
    merged = (reference > 0).astype(np.int32)  # one object covering both
    scores = segmentation_quality(merged, reference, iou_threshold=0.3)
    assert (scores["tp"], scores["fp"], scores["fn"]) == (1, 0, 1)


def test_pixel_scores_doctest_example():
    reference = np.zeros((100, 100), int)
    reference[:10, :10] = 1
    scores = pixel_scores(np.zeros_like(reference), reference)
    assert round(scores["pixel_accuracy"], 2) == 0.99 and scores["jaccard"] == 0.0


def test_bad_input_is_refused():
    a = np.zeros((10, 10), np.int32)
    with pytest.raises(InputError, match="same size"):
        segmentation_quality(a, np.zeros((10, 12), np.int32))
    with pytest.raises(InputError, match="integer"):
        segmentation_quality(a.astype(float), a)
    with pytest.raises(InputError, match="thresholds"):
        average_precision(a, a, thresholds=[1.5])
    with pytest.raises(InputError, match="at least one"):
        average_precision(a, a, thresholds=[])
