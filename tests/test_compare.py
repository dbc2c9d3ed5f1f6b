"""Method comparison: Bland-Altman and correlation against hand-computed values, the PNG plot."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tools.compare import bland_altman, correlate
from tools.errors import InputError
from tools.registry import get_tool
from tools.workspace import Workspace


@pytest.fixture
def counts():
    return pd.DataFrame({
        "image": ["a", "b", "c", "d", "e"],
        "manual": [10.0, 20.0, 30.0, 40.0, 50.0],
        "auto": [12.0, 21.0, 33.0, 41.0, 53.0],
    })


def test_bland_altman_matches_hand_computation(counts, tmp_path):
    out = tmp_path / "ba.png"
    result = bland_altman(counts, "auto", "manual", plot_path=str(out))
    # Differences auto - manual: 2, 1, 3, 1, 3 -> mean 2, sample SD sqrt(4/4) = 1.
    assert result["n"] == 5
    assert result["bias"] == pytest.approx(2.0)
    assert result["sd_difference"] == pytest.approx(1.0)
    assert result["loa_lower"] == pytest.approx(2.0 - 1.96)
    assert result["loa_upper"] == pytest.approx(2.0 + 1.96)
    assert result["percent_within_loa"] == 100.0
    assert result["plot_path"] == str(out)
    header = out.read_bytes()[:8]
    assert header == b"\x89PNG\r\n\x1a\n"
    from PIL import Image

    with Image.open(out) as im:
        assert im.format == "PNG" and im.size[0] > 100 and im.size[1] > 100


def test_bland_altman_without_plot_writes_nothing(counts, tmp_path):
    result = bland_altman(counts, "manual", "auto")
    assert result["plot_path"] is None
    assert result["bias"] == pytest.approx(-2.0)
    assert list(tmp_path.iterdir()) == []


def test_two_tables_joined_on_a_key(counts):
    other = pd.DataFrame({"image": ["e", "d", "c", "b", "a", "z"],
                          "count": [50, 40, 30, 20, 10, 99]})
    result = bland_altman(counts, "auto", "count", other=other, on="image")
    assert result["n"] == 5 and result["bias"] == pytest.approx(2.0)
    with pytest.raises(InputError, match="rows"):
        bland_altman(counts, "auto", "count", other=other)


def test_correlation_matches_hand_computation():
    table = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "y": [2.0, 4.0, 5.0, 9.0]})
    result = correlate(table, "x", "y")
    x, y = table["x"].to_numpy(), table["y"].to_numpy()
    dx, dy = x - x.mean(), y - y.mean()
    r = (dx * dy).sum() / np.sqrt((dx**2).sum() * (dy**2).sum())
    assert result["pearson_r"] == pytest.approx(r)
    assert result["r_squared"] == pytest.approx(r**2)
    assert result["spearman_rho"] == pytest.approx(1.0)  # monotonic
    assert result["slope"] == pytest.approx((dx * dy).sum() / (dx**2).sum())
    assert result["intercept"] == pytest.approx(y.mean() - result["slope"] * x.mean())


def test_perfect_correlation_is_not_agreement():
    table = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0, 5.0]})
    table["b"] = 2 * table["a"]
    assert correlate(table, "a", "b")["pearson_r"] == pytest.approx(1.0)
    assert bland_altman(table, "b", "a")["bias"] == pytest.approx(3.0)


def test_bad_input_is_refused(counts, tmp_path):
    with pytest.raises(InputError, match="no column 'nope'"):
        bland_altman(counts, "auto", "nope")
    with pytest.raises(InputError, match="numeric"):
        correlate(counts, "image", "auto")
    with pytest.raises(InputError, match="at least 3"):
        bland_altman(counts.head(2), "auto", "manual")
    with pytest.raises(InputError, match="constant"):
        correlate(counts.assign(c=1.0), "c", "auto")
    with pytest.raises(InputError, match="does not exist"):
        bland_altman(counts, "auto", "manual", plot_path=str(tmp_path / "no" / "x.png"))


def test_missing_values_are_dropped_pairwise():
    table = pd.DataFrame({"a": [1.0, 2.0, np.nan, 4.0, 5.0], "b": [1.0, 2.5, 3.0, np.nan, 5.5]})
    assert bland_altman(table, "a", "b")["n"] == 3


def test_bland_altman_runs_through_the_registry(counts, tmp_path):
    ws = Workspace([tmp_path], output_root=tmp_path / "out")
    ws.add("counts", counts, kind="table")
    result = get_tool(bland_altman).run(ws, {"table": "counts", "column_a": "auto",
                                             "column_b": "manual"})
    assert result.value["bias"] == pytest.approx(2.0)
    assert "bias" in result.summary
