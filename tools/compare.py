"""Comparing two measurement methods: Bland-Altman agreement and correlation.

Correlation says whether two methods rise and fall together; it does not say whether they
agree (a method that always reads twice as high correlates perfectly). Bland-Altman analysis
answers the agreement question: the mean difference (bias) between the methods and the limits
of agreement, bias ± 1.96 standard deviations of the differences, within which about 95% of
the differences fall when they are roughly normal.

Plots are written with matplotlib's Agg backend (no display needed) to a PNG path the caller
gives; tools stay pure functions that return numbers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from tools.errors import InputError
from tools.registry import tool
from tools.types import OutputPath, Table

__all__ = ["bland_altman", "bland_altman_plot", "correlate", "paired_values"]


def paired_values(
    table: pd.DataFrame,
    column_a: str,
    column_b: str,
    other: pd.DataFrame | None = None,
    on: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The two columns to compare as float arrays, rows with a missing value dropped.

    ``column_a`` comes from ``table``; ``column_b`` from ``other`` when given (joined on the
    key column ``on``, or row by row when ``on`` is None), else from ``table``.
    """
    if not isinstance(table, pd.DataFrame):
        raise InputError(f"table must be a DataFrame, got {type(table).__name__}")
    second = table if other is None else other
    for name, frame, col in (("table", table, column_a), ("second table", second, column_b)):
        if col not in frame.columns:
            raise InputError(
                f"{name} has no column {col!r}; columns are {list(map(str, frame.columns))}"
            )
    if other is not None and on is not None:
        for name, frame in (("table", table), ("second table", other)):
            if on not in frame.columns:
                raise InputError(f"{name} has no key column {on!r} to join on")
        right = other[[on, column_b]].rename(columns={column_b: "__b"})
        joined = table[[on, column_a]].rename(columns={column_a: "__a"}).merge(right, on=on)
        a, b = joined["__a"], joined["__b"]
    elif other is not None:
        if len(other) != len(table):
            raise InputError(
                f"the tables have {len(table)} and {len(other)} rows; give a key column "
                "(on=...) to pair them, or tables of the same length"
            )
        a, b = table[column_a].reset_index(drop=True), other[column_b].reset_index(drop=True)
    else:
        a, b = table[column_a], table[column_b]
    try:
        a = pd.to_numeric(a).to_numpy(dtype=np.float64)
        b = pd.to_numeric(b).to_numpy(dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"columns {column_a!r} and {column_b!r} must be numeric") from None
    keep = np.isfinite(a) & np.isfinite(b)
    if keep.sum() < 3:
        raise InputError(
            f"need at least 3 pairs of finite values to compare, got {int(keep.sum())}"
        )
    return a[keep], b[keep]


def bland_altman_plot(
    a: np.ndarray,
    b: np.ndarray,
    path: str | Path,
    *,
    label_a: str = "A",
    label_b: str = "B",
) -> Path:
    """Draw a Bland-Altman plot (difference against mean) to a PNG file.

    Parameters
    ----------
    a, b : np.ndarray
        Paired measurements.
    path : str or Path
        PNG file to write; its folder must exist.
    label_a, label_b : str
        Names of the two methods for the axis labels.

    Returns
    -------
    Path
        The file written.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    path = Path(path)
    if not path.parent.is_dir():
        raise InputError(f"folder {str(path.parent)!r} does not exist")
    mean = (a + b) / 2
    diff = a - b
    bias = float(diff.mean())
    sd = float(diff.std(ddof=1))
    fig = Figure(figsize=(5, 4), dpi=100)  # a Figure without pyplot: no global state, no GUI
    ax = fig.add_subplot()
    ax.scatter(mean, diff, s=12, alpha=0.7)
    for value, style, text in (
        (bias, "-", f"bias {bias:.3g}"),
        (bias + 1.96 * sd, "--", f"+1.96 SD {bias + 1.96 * sd:.3g}"),
        (bias - 1.96 * sd, "--", f"-1.96 SD {bias - 1.96 * sd:.3g}"),
    ):
        ax.axhline(value, color="k", linestyle=style, linewidth=1)
        ax.annotate(text, (1.0, value), xycoords=("axes fraction", "data"), ha="right",
                    va="bottom", fontsize=8)
    ax.set_xlabel(f"mean of {label_a} and {label_b}")
    ax.set_ylabel(f"{label_a} − {label_b}")
    ax.set_title("Bland-Altman")
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path


@tool(category="compare")
def bland_altman(
    table: Table,
    column_a: str,
    column_b: str,
    other: Table | None = None,
    on: str | None = None,
    plot_path: OutputPath | None = None,
) -> dict[str, Any]:
    """Agreement of two measurement methods: bias and 95% limits of agreement (Bland-Altman).

    The difference A − B of each pair is computed; the bias is the mean difference and the
    limits of agreement are bias ± 1.96 × the standard deviation of the differences (sample
    SD, n − 1). Use it to decide whether one method can replace another; correlation alone
    cannot tell that.

    Parameters
    ----------
    table : DataFrame
        Table holding ``column_a`` (and ``column_b`` unless ``other`` is given).
    column_a : str
        Column of the first method's values.
    column_b : str
        Column of the second method's values.
    other : DataFrame, optional
        A second table holding ``column_b`` (e.g. counts from another method).
    on : str, optional
        Key column present in both tables to pair rows (e.g. "image" or "label"); rows are
        paired in order when left out.
    plot_path : str, optional
        PNG file to draw the Bland-Altman plot to (difference against mean); no plot when
        left out.

    Returns
    -------
    agreement : dict
        ``n``, ``mean_a``, ``mean_b``, ``bias`` (mean of A − B), ``sd_difference``,
        ``loa_lower``, ``loa_upper``, ``percent_within_loa`` and ``plot_path`` (or None).

    References
    ----------
    .. [1] J. M. Bland and D. G. Altman, "Statistical methods for assessing agreement between
           two methods of clinical measurement," Lancet 327(8476), 307-310 (1986).

    Examples
    --------
    >>> import pandas as pd
    >>> from tools.compare import bland_altman
    >>> counts = pd.DataFrame({"manual": [10, 20, 30, 40], "automatic": [12, 21, 33, 42]})
    >>> result = bland_altman(counts, "manual", "automatic")
    >>> result["n"], result["bias"]
    (4, -2.0)
    """
    a, b = paired_values(table, column_a, column_b, other, on)
    diff = a - b
    bias = float(diff.mean())
    sd = float(diff.std(ddof=1))
    lower, upper = bias - 1.96 * sd, bias + 1.96 * sd
    written = None
    if plot_path is not None:
        written = str(bland_altman_plot(a, b, plot_path, label_a=column_a, label_b=column_b))
    return {
        "n": len(a),
        "mean_a": float(a.mean()),
        "mean_b": float(b.mean()),
        "bias": bias,
        "sd_difference": sd,
        "loa_lower": lower,
        "loa_upper": upper,
        "percent_within_loa": float(100 * np.mean((diff >= lower) & (diff <= upper))),
        "plot_path": written,
    }


@tool(category="compare")
def correlate(
    table: Table,
    column_a: str,
    column_b: str,
    other: Table | None = None,
    on: str | None = None,
) -> dict[str, float]:
    """Pearson and Spearman correlation between two columns or two methods' measurements.

    Pearson's r measures a linear relation, Spearman's ρ a monotonic one (ranks), which is
    robust to outliers. Both say whether the methods vary together, not whether they agree:
    use bland_altman for agreement.

    Parameters
    ----------
    table : DataFrame
        Table holding ``column_a`` (and ``column_b`` unless ``other`` is given).
    column_a : str
        First column.
    column_b : str
        Second column.
    other : DataFrame, optional
        A second table holding ``column_b``.
    on : str, optional
        Key column present in both tables to pair rows; rows are paired in order when left
        out.

    Returns
    -------
    correlation : dict
        ``n``, ``pearson_r``, ``pearson_p``, ``spearman_rho``, ``spearman_p``, ``r_squared``,
        and the least-squares line ``slope`` and ``intercept`` of B against A.

    References
    ----------
    .. [1] C. Spearman, "The proof and measurement of association between two things," Am. J.
           Psychol. 15, 72-101 (1904).

    Examples
    --------
    Counts of the same images by two methods, paired by image name:

    >>> import pandas as pd
    >>> from tools.compare import correlate
    >>> manual = pd.DataFrame({"image": ["a", "b", "c", "d"], "count": [10, 20, 30, 40]})
    >>> automatic = pd.DataFrame({"image": ["d", "c", "b", "a"], "count": [41, 29, 22, 9]})
    >>> result = correlate(manual, "count", "count", other=automatic, on="image")
    >>> round(result["pearson_r"], 3), result["spearman_rho"], round(result["slope"], 2)
    (0.994, 1.0, 1.03)
    """
    a, b = paired_values(table, column_a, column_b, other, on)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        raise InputError("a column is constant: correlation is undefined")
    pearson = stats.pearsonr(a, b)
    spearman = stats.spearmanr(a, b)
    fit = stats.linregress(a, b)
    return {
        "n": len(a),
        "pearson_r": float(pearson.statistic),
        "pearson_p": float(pearson.pvalue),
        "spearman_rho": float(spearman.statistic),
        "spearman_p": float(spearman.pvalue),
        "r_squared": float(pearson.statistic**2),
        "slope": float(fit.slope),
        "intercept": float(fit.intercept),
    }
