"""The unbiased pass@k estimator of Chen et al. (2021), "Evaluating Large Language Models
Trained on Code".

Out of ``n`` samples of which ``c`` pass, pass@k is the probability that at least one of ``k``
samples drawn without replacement passes: ``1 - C(n - c, k) / C(n, k)``. The product form below
avoids the huge binomial coefficients.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased estimate of pass@k for one task.

    Parameters
    ----------
    n : int
        Samples generated for the task.
    c : int
        Samples that passed, ``0 <= c <= n``.
    k : int
        Attempts allowed, ``1 <= k <= n``.

    Returns
    -------
    float
        ``1 - C(n - c, k) / C(n, k)``.
    """
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n, got n={n}, c={c}")
    if not 1 <= k <= n:
        raise ValueError(f"need 1 <= k <= n, got n={n}, k={k}")
    if n - c < k:
        return 1.0
    # C(n-c, k) / C(n, k) = prod_{i=n-c+1}^{n} (1 - k / i)
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def mean_pass_at_k(
    counts: Mapping[str, tuple[int, int]] | Iterable[tuple[int, int]], ks: Sequence[int]
) -> dict[int, float]:
    """Mean pass@k over tasks for each ``k`` that every task has enough samples for.

    Parameters
    ----------
    counts : mapping or iterable
        ``(n, c)`` per task (a mapping from task id, or a plain iterable).
    ks : sequence of int
        The ``k`` values wanted.

    Returns
    -------
    dict of int to float
        ``{k: mean pass@k}``; a ``k`` larger than some task's ``n`` is left out.
    """
    pairs = list(counts.values() if isinstance(counts, Mapping) else counts)
    if not pairs:
        return {}
    smallest = min(n for n, _ in pairs)
    return {
        k: float(np.mean([pass_at_k(n, c, k) for n, c in pairs]))
        for k in ks
        if 1 <= k <= smallest
    }
