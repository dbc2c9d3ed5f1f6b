"""`bia demo` runs the bundled pipeline offline and its result matches the ground truth."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from agent.cli import main
from agent.demo import EXAMPLES
from tools.io import read_image


def test_bundled_example_is_calibrated_and_has_truth() -> None:
    image, meta = read_image(EXAMPLES / "nuclei.tif")
    truth, truth_meta = read_image(EXAMPLES / "nuclei_labels.tif")
    assert image.shape == truth.shape == (512, 512)
    assert meta.pixel_size().spacing == (0.5, 0.5) and meta.unit == "µm"
    assert truth_meta.unit == "µm"
    assert np.unique(truth[truth > 0]).size == 120


def test_demo_measures_what_the_truth_says(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["demo", "--outdir", str(tmp_path), "--pipeline"]) == 0
    printed = capsys.readouterr().out
    assert "ground truth: 120 nuclei" in printed
    session = next(tmp_path.glob("session-*"))
    table = pd.read_csv(next(session.glob("*measurements.csv")))
    assert 100 <= len(table) <= 135
    assert {"label", "area_um2", "area_px", "equivalent_diameter_um"} <= set(table.columns)
    np.testing.assert_allclose(table["area_um2"], table["area_px"] * 0.25)
    labels, meta = read_image(next(session.glob("*labels.ome.tif")))
    assert labels.max() == len(table) and meta.unit == "µm"
    record = json.loads((session / "provenance.json").read_text())
    check = record["report"]["ground_truth"]
    assert check["f1_iou50"] > 0.85
    assert abs(check["mean_area_error_pct"]) < 10
    assert [c["tool"] for c in record["calls"]] == [
        "denoise_nlm", "voronoi_otsu_labeling", "measure_objects"]
    assert record["artifacts"]["nuclei"]["provenance"]["sha256"]


def test_cli_help_lists_verbs(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "demo" in capsys.readouterr().out
    assert main([]) == 2
