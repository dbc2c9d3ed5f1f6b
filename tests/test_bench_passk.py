"""pass@k: the product form against brute-force enumeration of every k-subset."""

from __future__ import annotations

import itertools

import pytest

from evals.passk import mean_pass_at_k, pass_at_k


def brute_force(n: int, c: int, k: int) -> float:
    outcomes = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(outcomes[i] for i in s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("n", range(1, 9))
def test_matches_enumeration(n: int) -> None:
    for c in range(n + 1):
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(brute_force(n, c, k), abs=1e-12)


def test_known_values_and_large_n() -> None:
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert pass_at_k(10, 0, 5) == 0.0
    assert pass_at_k(10, 6, 5) == 1.0
    # Binomials of 200 choose 100 overflow floats; the product form does not.
    value = pass_at_k(200, 1, 100)
    assert value == pytest.approx(0.5)


@pytest.mark.parametrize(("n", "c", "k"), [(5, 6, 1), (5, -1, 1), (5, 2, 0), (5, 2, 6)])
def test_bad_arguments(n: int, c: int, k: int) -> None:
    with pytest.raises(ValueError, match="need"):
        pass_at_k(n, c, k)


def test_mean_over_tasks_skips_k_above_n() -> None:
    result = mean_pass_at_k({"a": (4, 1), "b": (4, 4)}, ks=(1, 2, 10))
    assert set(result) == {1, 2}
    assert result[1] == pytest.approx((0.25 + 1.0) / 2)
    assert mean_pass_at_k({}, ks=(1,)) == {}
