"""Disentanglement metrics of latent codes against continuous attributes (``docs/METRICS.md``).

Codes ``z`` (N, D) — by convention the posterior means μ — and attributes ``y`` (N, K):

* mutual information ``I(z_i; y_k)``, in nats, by one of two deterministic estimators
  (:data:`MI_ESTIMATORS`):

  - ``"knn"`` (default, seed-comparable): the Kraskov k-nearest-neighbour estimator of
    scikit-learn's ``mutual_info_regression`` (``n_neighbors`` = 3, sklearn's default) with a fixed
    ``random_state`` for the 1e-10 jitter it adds. This is what AR-VAE's metric code
    (``utils/evaluation.py`` of github.com/ashispati/ar-vae) calls, and the Attri-SIVAE paper
    (seed 001, §3.4, footnote 5) computed its Table 1 with that code. AR-VAE leaves
    ``random_state`` unset (the jitter then follows numpy's global generator); ours is fixed so a
    number can be reproduced.
  - ``"histogram"``: fixed-bin joint histograms (``bins`` equal-width bins between each column's
    min and max, numpy's convention: each bin holds its left edge, the last also its right edge).
    Much faster at large N, but its values are not comparable with the seed's (with 20 bins and a
    few hundred codes its bias dominates; Modularity in particular comes out much lower).

  A column that is exactly constant carries no information: its MI with everything is 0 under
  both estimators (the k-NN estimator would otherwise score the jitter it adds).
* Interpretability (Adel et al. 2018, as in AR-VAE / Attri-SIVAE): ``d* = argmax_i I(z_i; y_k)``,
  score = R² of the 1-D linear regression of ``y_k`` on ``z_d*``; per attribute and mean.
* Modularity (Ridgeway & Mozer 2018): ``θ_i = max_k m_ik²``,
  ``δ_i = (Σ_k m_ik² − θ_i) / (θ_i (K − 1))``, ``1 − δ_i``, and 0 where ``θ_i = 0`` (a constant
  code scores 0, not 1); mean over codes.
* SAP (Kumar et al. 2018): ``S_ik = cov(z_i, y_k)² / (var z_i var y_k)`` (0 where ``var z_i ≈ 0``),
  mean over attributes of (largest − second largest) of ``S_·k``.
* SCC: ``|Spearman ρ(z_i, y_k)|``, mean over attributes of the max over codes; AR-VAE counts a
  correlation only where its two-sided p-value is ``<= 0.05`` (``scc_max_p``; ``None``: no filter).
* MIG (Chen et al. 2018): mean over attributes of (top1 − top2 of ``I(·; y_k)``) / ``H(y_k)``, with
  ``H(y_k)`` from the same estimator (k-NN: ``I(y_k; y_k)``, as AR-VAE's ``continuous_entropy``;
  histogram: the entropy of the binned attribute). An attribute with ``H(y_k) = 0`` (constant) is
  left out of the mean, with a warning, and :func:`compute_disentanglement` lists it.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from monai.metrics import CumulativeIterationMetric
from scipy.stats import t as student_t

__all__ = [
    "DISENTANGLEMENT_METRICS",
    "MI_ESTIMATORS",
    "DisentanglementMetric",
    "attribute_entropy",
    "compute_disentanglement",
    "describe_disentanglement_settings",
    "describe_mi_estimator",
    "discretize",
    "entropy_discrete",
    "interpretability",
    "mig",
    "modularity",
    "mutual_information_matrix",
    "sap_score",
    "scc_score",
    "spearman_matrix",
]

DISENTANGLEMENT_METRICS = ("interpretability", "modularity", "sap", "scc", "mig")
#: Mutual-information estimators: ``"knn"`` (sklearn's ``mutual_info_regression``, as AR-VAE) or ``"histogram"``.
MI_ESTIMATORS = ("knn", "histogram")
_EPS = 1e-12  # one guard for every variance / entropy division


def _as_2d(x: Any, name: str) -> np.ndarray:
    x = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    x = x.astype(np.float64, copy=False)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise ValueError(f"{name} must be (N, columns); got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} holds non-finite values")
    return x


def _check_pair(z: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    z, y = _as_2d(z, "codes"), _as_2d(y, "attributes")
    if z.shape[0] != y.shape[0] or z.shape[0] < 2:
        raise ValueError(f"codes {z.shape} and attributes {y.shape} need the same number N >= 2 of rows")
    return z, y


def _check_estimator(mi_estimator: str, bins: int, n_neighbors: int) -> None:
    if mi_estimator not in MI_ESTIMATORS:
        raise ValueError(f"mi_estimator must be one of {MI_ESTIMATORS}; got {mi_estimator!r}")
    if int(bins) < 1:
        raise ValueError(f"bins must be >= 1 (histogram estimator); got {bins}")
    if int(n_neighbors) < 1:
        raise ValueError(f"n_neighbors must be >= 1 (knn estimator); got {n_neighbors}")


def _constant(x: np.ndarray) -> np.ndarray:
    """Per column: whether every value is the same."""
    return x.max(0) == x.min(0)


def describe_mi_estimator(
    mi_estimator: str = "knn", bins: int = 20, n_neighbors: int = 3, random_state: int | None = 0
) -> str:
    """One line naming the MI estimator and its settings, for tables and ``metrics.json``.

    Example:
        >>> describe_mi_estimator("histogram", bins=20)
        '20-bin histogram MI'
        >>> describe_mi_estimator()
        'k-NN MI (sklearn mutual_info_regression, n_neighbors=3, random_state=0; as AR-VAE)'
    """
    _check_estimator(mi_estimator, bins, n_neighbors)
    if mi_estimator == "histogram":
        return f"{int(bins)}-bin histogram MI"
    return (
        f"k-NN MI (sklearn mutual_info_regression, n_neighbors={int(n_neighbors)}, "
        f"random_state={random_state}; as AR-VAE)"
    )


def describe_disentanglement_settings(metrics: Mapping[str, Any]) -> str:
    """How the numbers of a :func:`compute_disentanglement` result (or a ``metrics.json`` holding one) were computed.

    Results written before the estimator was an option carry no ``mi_estimator`` key: they used the
    20-bin histogram (``bins``) and no SCC p-value filter, and are described so.

    Example:
        >>> describe_disentanglement_settings({"bins": 20})
        '20-bin histogram MI; SCC without a p-value filter'
        >>> describe_disentanglement_settings({"mi_estimator": "knn", "n_neighbors": 3, "random_state": 0, "scc_max_p": 0.05})
        'k-NN MI (sklearn mutual_info_regression, n_neighbors=3, random_state=0; as AR-VAE); SCC counting |ρ| with p <= 0.05'
    """
    estimator = metrics.get("mi_estimator", "histogram")
    mi = describe_mi_estimator(
        estimator, int(metrics.get("bins", 20)), int(metrics.get("n_neighbors", 3)), metrics.get("random_state", 0)
    )
    p = metrics.get("scc_max_p")
    return f"{mi}; SCC " + (f"counting |ρ| with p <= {p:g}" if p is not None else "without a p-value filter")


def discretize(x: np.ndarray, bins: int = 20) -> np.ndarray:
    """Equal-width bin index (0..bins-1) of each column between its min and max, as ``np.histogram`` bins.

    The edges are ``np.linspace(min, max, bins + 1)``; a value on an inner edge goes to the bin on
    its right, the maximum to the last bin (numpy's convention, including its ±1 ULP correction).
    A constant column maps to bin 0 (``np.histogram`` would widen its range by ±0.5; its
    entropy and MI are 0 either way).

    Example:
        >>> discretize(np.array([[0.0], [0.5], [1.0]]), bins=2).ravel().tolist()
        [0, 1, 1]
    """
    x = np.asarray(x, np.float64)
    x2 = x[:, None] if x.ndim == 1 else x
    lo, hi = x2.min(0), x2.max(0)
    const = hi == lo
    hi = np.where(const, lo + 1.0, hi)  # any non-zero span: the column's indices are reset to 0 below
    edges = np.linspace(lo, hi, bins + 1)  # (bins + 1, m), column c == np.linspace(lo[c], hi[c], bins + 1)
    idx = (((x2 - lo) / (hi - lo)) * bins).astype(np.int64)
    idx[idx == bins] -= 1
    idx -= x2 < np.take_along_axis(edges, idx, 0)
    idx += (x2 >= np.take_along_axis(edges, idx + 1, 0)) & (idx != bins - 1)
    idx[:, const] = 0
    return idx.reshape(x.shape)


def entropy_discrete(y: Any, bins: int = 20) -> np.ndarray:
    """Entropy (nats) of each column of ``y`` binned by :func:`discretize`.

    Example:
        >>> entropy_discrete(np.array([0.0, 0.0, 1.0, 1.0]), bins=2).round(4).tolist()
        [0.6931]
    """
    y = _as_2d(y, "attributes")
    idx = discretize(y, bins)
    k = y.shape[1]
    counts = np.bincount((idx + np.arange(k) * bins).ravel(), minlength=k * bins).reshape(k, bins)
    p = counts / y.shape[0]
    return np.maximum(-(p * np.log(np.where(p > 0, p, 1.0))).sum(1), 0.0)


def _neighbors_for(n: int, n_neighbors: int) -> int:
    """The k-NN estimator needs fewer neighbours than codes: ``min(n_neighbors, n - 1)``, with a warning when it binds."""
    k = min(int(n_neighbors), n - 1)
    if k < int(n_neighbors):
        warnings.warn(
            f"k-NN mutual information with {n} codes: n_neighbors lowered from {n_neighbors} to {k}", stacklevel=3
        )
    return k


def _knn_mi(x: np.ndarray, target: np.ndarray, n_neighbors: int, random_state: int | None) -> np.ndarray:
    """``I(x_i; target)`` for every column of ``x`` by sklearn's k-NN estimator (AR-VAE's call)."""
    from sklearn.feature_selection import mutual_info_regression

    return np.asarray(
        mutual_info_regression(
            x, target, discrete_features=False, n_neighbors=int(n_neighbors), random_state=random_state
        ),
        np.float64,
    )


def mutual_information_matrix(
    z: Any,
    y: Any,
    bins: int = 20,
    mi_estimator: str = "knn",
    n_neighbors: int = 3,
    random_state: int | None = 0,
) -> np.ndarray:
    """(D, K) matrix of ``I(z_i; y_k)`` in nats; 0 in the rows of constant codes and the columns of constant attributes.

    Args:
        z: codes (N, D).
        y: attributes (N, K).
        bins: equal-width bins per column (``mi_estimator="histogram"`` only).
        mi_estimator: ``"knn"`` (sklearn ``mutual_info_regression`` per attribute, as AR-VAE's
            ``continuous_mutual_info``) or ``"histogram"`` (joint histograms, all pairs in one bincount).
        n_neighbors: neighbours of the k-NN estimator (sklearn's and AR-VAE's default 3); with N codes
            at most N - 1 are used (a warning says so).
        random_state: seed of the k-NN estimator's 1e-10 jitter (``None``: numpy's global generator,
            as AR-VAE; not reproducible).

    Raises:
        ValueError: shapes disagree, fewer than 2 rows, non-finite values, or an unknown estimator.

    Example:
        >>> y = np.array([0.0, 0.0, 1.0, 1.0] * 5); z = np.stack([y, np.ones(20)], 1)
        >>> mutual_information_matrix(z, y, bins=2, mi_estimator="histogram").round(4).tolist()
        [[0.6931], [0.0]]
    """
    _check_estimator(mi_estimator, bins, n_neighbors)
    z, y = _check_pair(z, y)
    n, d = z.shape
    k = y.shape[1]
    if mi_estimator == "knn":
        n_neighbors = _neighbors_for(n, n_neighbors)
        mi = np.stack([_knn_mi(z, y[:, j], n_neighbors, random_state) for j in range(k)], 1)
    else:
        zi, yi = discretize(z, bins), discretize(y, bins)
        pair = (np.arange(d)[:, None] * k + np.arange(k)[None, :]) * bins * bins  # (D, K)
        codes = zi[:, :, None] * bins + yi[:, None, :] + pair[None]  # (N, D, K)
        joint = np.bincount(codes.ravel(), minlength=d * k * bins * bins).reshape(d, k, bins, bins)
        cz = np.bincount((zi + np.arange(d) * bins).ravel(), minlength=d * bins).reshape(d, 1, bins, 1)
        cy = np.bincount((yi + np.arange(k) * bins).ravel(), minlength=k * bins).reshape(1, k, 1, bins)
        # integer counts: a constant column gives log(c_y n / (n c_y)) = log 1 = 0 exactly
        ratio = np.where(joint > 0, joint * float(n) / np.maximum(cz * cy, 1).astype(np.float64), 1.0)
        mi = np.maximum((joint / n * np.log(ratio)).sum((2, 3)), 0.0)
    mi[_constant(z), :] = 0.0
    mi[:, _constant(y)] = 0.0
    return mi


def attribute_entropy(
    y: Any, bins: int = 20, mi_estimator: str = "knn", n_neighbors: int = 3, random_state: int | None = 0
) -> np.ndarray:
    """``H(y_k)`` (nats) of each attribute by the same estimator as the MI it normalises (MIG); 0 for a constant one.

    ``"knn"``: ``I(y_k; y_k)`` by sklearn's k-NN estimator, as AR-VAE's ``continuous_entropy``;
    ``"histogram"``: :func:`entropy_discrete`.

    Example:
        >>> attribute_entropy(np.array([[0.0, 5.0], [1.0, 5.0]]), bins=2, mi_estimator="histogram").round(4).tolist()
        [0.6931, 0.0]
    """
    _check_estimator(mi_estimator, bins, n_neighbors)
    y = _as_2d(y, "attributes")
    if mi_estimator == "histogram":
        h = entropy_discrete(y, bins)
    else:
        if y.shape[0] < 2:
            raise ValueError(f"attributes need N >= 2 rows; got shape {y.shape}")
        n_neighbors = _neighbors_for(y.shape[0], n_neighbors)
        h = np.array([_knn_mi(y[:, j : j + 1], y[:, j], n_neighbors, random_state)[0] for j in range(y.shape[1])])
    h[_constant(y)] = 0.0
    return h


def interpretability(
    z: Any,
    y: Any,
    bins: int = 20,
    mi: np.ndarray | None = None,
    mi_estimator: str = "knn",
    n_neighbors: int = 3,
    random_state: int | None = 0,
) -> dict[str, Any]:
    """Interpretability: per attribute the most informative code ``d*`` and the R² of ``y_k ~ a z_d* + b``.

    Args:
        z: codes (N, D).
        y: attributes (N, K).
        bins, mi_estimator, n_neighbors, random_state: the MI estimator (:func:`mutual_information_matrix`).
        mi: a precomputed (D, K) MI matrix (the estimator options are then unused).

    Returns:
        ``{"dims": [d*_k], "scores": [R²_k], "mean": mean_k R²_k}``.

    Example:
        >>> z = np.array([[0., 5.], [1., 3.], [2., 9.], [3., 1.]]); y = 2 * z[:, :1] + 1
        >>> interpretability(z, y, bins=4, mi_estimator="histogram")["scores"]
        [1.0]
    """
    z, y = _check_pair(z, y)
    mi = mutual_information_matrix(z, y, bins, mi_estimator, n_neighbors, random_state) if mi is None else mi
    dims = np.argmax(mi, axis=0)
    zs = z[:, dims]
    zc, yc = zs - zs.mean(0), y - y.mean(0)
    cov = (zc * yc).mean(0)
    var_z, var_y = (zc**2).mean(0), (yc**2).mean(0)
    r2 = np.where((var_z > _EPS) & (var_y > _EPS), cov**2 / np.maximum(var_z * var_y, _EPS), 0.0)
    return {"dims": dims.tolist(), "scores": r2.tolist(), "mean": float(r2.mean())}


def modularity(mi: np.ndarray) -> float:
    """Ridgeway & Mozer's modularity from a (D, K) mutual-information matrix (mean over codes).

    A code whose MI with every attribute is 0 (e.g. a constant code) scores 0; with one attribute
    every informative code scores 1.

    Example:
        >>> modularity(np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 0.0]]))  # codes score 1, 0 and 0
        0.3333333333333333
    """
    mi = np.asarray(mi, np.float64)
    if mi.ndim != 2:
        raise ValueError(f"mi must be a (codes, attributes) matrix; got shape {mi.shape}")
    k = mi.shape[1]
    sq = mi**2
    theta = sq.max(1)
    informative = theta > 0
    if k < 2:
        return float(informative.mean())
    delta = (sq.sum(1) - theta) / np.where(informative, theta * (k - 1), 1.0)
    return float(np.where(informative, 1.0 - delta, 0.0).mean())


def _top2_gap(s: np.ndarray) -> np.ndarray:
    """Per column: largest minus second-largest entry (the largest itself when only one row)."""
    if s.shape[0] < 2:
        return s[0]
    top = np.sort(s, axis=0)
    return top[-1] - top[-2]


def sap_score(z: Any, y: Any) -> float:
    """SAP for continuous attributes: mean_k gap of ``cov(z_i, y_k)² / (var z_i var y_k)``.

    Example:
        >>> z = np.array([[0., 1.], [1., 1.], [2., 1.]]); y = z[:, :1] * 3
        >>> sap_score(z, y)
        1.0
    """
    z, y = _check_pair(z, y)
    zc, yc = z - z.mean(0), y - y.mean(0)
    cov = zc.T @ yc / z.shape[0]
    var_z, var_y = (zc**2).mean(0), (yc**2).mean(0)
    s = np.where(
        var_z[:, None] > _EPS * max(1.0, float(var_z.max())), cov**2 / np.maximum(np.outer(var_z, var_y), _EPS), 0.0
    )
    return float(_top2_gap(s).mean())


def _ranks(x: np.ndarray) -> np.ndarray:
    """Column-wise ranks 1..N with ties averaged (scipy's ``rankdata(method="average")``), vectorised."""
    n, m = x.shape
    xt = np.ascontiguousarray(x.T)  # sort rows of a contiguous (m, n) array: much faster than axis 0
    order = np.argsort(xt, axis=1)
    xs = np.take_along_axis(xt, order, 1)
    new = np.ones((m, n), bool)
    new[:, 1:] = xs[:, 1:] != xs[:, :-1]
    group = np.cumsum(new, 1) - 1 + (np.arange(m) * n)[:, None]  # tie-group id, unique across columns
    counts = np.bincount(group.ravel(), minlength=n * m)
    if counts.max() == 1:  # no ties: the rank is the position
        avg = np.broadcast_to(np.arange(1, n + 1, dtype=np.float64), (m, n))
    else:
        position = np.broadcast_to(np.arange(1, n + 1, dtype=np.float64), (m, n))
        sums = np.bincount(group.ravel(), weights=position.ravel(), minlength=n * m)
        avg = (sums / np.maximum(counts, 1))[group]
    ranks = np.empty((m, n))
    np.put_along_axis(ranks, order, avg, 1)
    return ranks.T


def spearman_matrix(z: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    """(D, K) Spearman ρ of every (code, attribute) pair and its two-sided p-value (``scipy.stats.spearmanr``'s).

    The p-value is scipy's: Student's t with N − 2 degrees of freedom on
    ``t = ρ sqrt((N − 2) / ((1 + ρ)(1 − ρ)))``. A constant column has ρ = 0 and p = 1 (scipy: NaN).

    Example:
        >>> rho, p = spearman_matrix(np.arange(5.0), np.arange(5.0) ** 3)
        >>> float(rho[0, 0]), float(p[0, 0])
        (1.0, 0.0)
    """
    z, y = _check_pair(z, y)
    n = z.shape[0]
    rz, ry = _ranks(z), _ranks(y)
    rz, ry = rz - rz.mean(0), ry - ry.mean(0)
    denom = np.sqrt(np.outer((rz**2).sum(0), (ry**2).sum(0)))
    rho = np.clip(np.where(denom > _EPS, (rz.T @ ry) / np.maximum(denom, _EPS), 0.0), -1.0, 1.0)
    dof = n - 2
    if dof < 1:  # two rows: no test possible
        return rho, np.ones_like(rho)
    with np.errstate(divide="ignore"):
        t = rho * np.sqrt(np.clip(dof / ((rho + 1.0) * (1.0 - rho)), 0, None))
    p = np.where(denom > _EPS, 2.0 * student_t.sf(np.abs(t), dof), 1.0)
    return rho, np.minimum(p, 1.0)


def scc_score(z: Any, y: Any, max_p: float | None = 0.05) -> float:
    """SCC: mean over attributes of max over codes of ``|Spearman ρ(z_i, y_k)|``.

    Args:
        z: codes (N, D).
        y: attributes (N, K).
        max_p: a correlation counts only where its two-sided p-value is ``<= max_p`` (AR-VAE's
            ``_compute_correlation_matrix`` filter, 0.05); ``None`` counts every correlation.

    Example:
        >>> z = np.array([[0., 3.], [1., 2.], [5., 1.], [9., 0.]]); y = np.array([[1.], [2.], [3.], [4.]])
        >>> scc_score(z, y)
        1.0
    """
    rho, p = spearman_matrix(z, y)
    s = np.abs(rho)
    if max_p is not None:
        s = np.where(p <= float(max_p), s, 0.0)
    return float(s.max(0).mean())


def mig(mi: np.ndarray, entropy_y: np.ndarray) -> float:
    """Mutual information gap from a (D, K) MI matrix and the attributes' entropies.

    An attribute with zero entropy (a constant attribute) is left out of the mean with a warning
    (``compute_disentanglement`` lists it under ``mig_excluded_attributes``); NaN when none is left.

    Example:
        >>> mig(np.array([[1.0, 0.0], [0.5, 0.5]]), np.array([1.0, 2.0]))  # (0.5/1 + 0.5/2) / 2
        0.375
    """
    gap = _top2_gap(np.asarray(mi, np.float64))
    entropy_y = np.asarray(entropy_y, np.float64)
    keep = entropy_y > _EPS
    if not keep.all():
        warnings.warn(
            f"MIG leaves out attribute(s) {np.nonzero(~keep)[0].tolist()} with zero entropy "
            "(a constant attribute, or too few codes for the estimator)",
            stacklevel=2,
        )
    if not keep.any():
        return float("nan")
    return float((gap[keep] / entropy_y[keep]).mean())


def compute_disentanglement(
    z: Any,
    y: Any,
    bins: int = 20,
    mi_estimator: str = "knn",
    n_neighbors: int = 3,
    random_state: int | None = 0,
    scc_max_p: float | None = 0.05,
) -> dict[str, Any]:
    """All metrics at once (one MI matrix shared by Interpretability, Modularity and MIG).

    The defaults are the seed's (Attri-SIVAE through AR-VAE's metric code): k-NN MI and SCC's
    p <= 0.05 filter. ``mi_estimator="histogram"`` with ``bins`` is the fast fixed-bin option.

    Args:
        z: codes (N, D), by convention the posterior means μ.
        y: attributes (N, K).
        bins: histogram bins (``mi_estimator="histogram"``).
        mi_estimator: ``"knn"`` or ``"histogram"`` (:func:`mutual_information_matrix`).
        n_neighbors: k of the k-NN estimator.
        random_state: seed of the k-NN estimator's jitter.
        scc_max_p: SCC's p-value filter (:func:`scc_score`; ``None`` for none).

    Returns:
        ``{"interpretability": mean, "interpretability_per_attribute": {"dims", "scores"},
        "modularity", "sap", "scc", "mig", "mig_excluded_attributes": [k, ...], "mi_estimator",
        "mi_description", "bins", "n_neighbors", "random_state", "scc_max_p", "n"}``.

    Example:
        >>> t = np.linspace(0, 1, 50)[:, None]
        >>> out = compute_disentanglement(np.hstack([t, np.ones_like(t)]), t ** 2, mi_estimator="histogram")
        >>> out["interpretability_per_attribute"]["dims"], out["modularity"], out["scc"]
        ([0], 0.5, 1.0)
    """
    _check_estimator(mi_estimator, bins, n_neighbors)
    z, y = _check_pair(z, y)
    mi = mutual_information_matrix(z, y, bins, mi_estimator, n_neighbors, random_state)
    interp = interpretability(z, y, mi=mi)
    entropy = attribute_entropy(y, bins, mi_estimator, n_neighbors, random_state)
    mig_value = mig(mi, entropy)  # warns when it leaves an attribute out
    return {
        "interpretability": interp["mean"],
        "interpretability_per_attribute": {"dims": interp["dims"], "scores": interp["scores"]},
        "modularity": modularity(mi),
        "sap": sap_score(z, y),
        "scc": scc_score(z, y, scc_max_p),
        "mig": mig_value,
        "mig_excluded_attributes": np.nonzero(entropy <= _EPS)[0].tolist(),
        "mi_estimator": mi_estimator,
        "mi_description": describe_mi_estimator(mi_estimator, bins, min(n_neighbors, z.shape[0] - 1), random_state),
        "bins": int(bins),
        "n_neighbors": min(int(n_neighbors), z.shape[0] - 1),
        "random_state": random_state,
        "scc_max_p": scc_max_p,
        "n": int(z.shape[0]),
    }


class DisentanglementMetric(CumulativeIterationMetric):
    """Accumulates latent codes and attributes over iterations; aggregates one disentanglement metric.

    Each call buffers ``y_pred`` (codes, (B, D) — the posterior mean μ by convention) and ``y``
    (attributes, (B, K)). :meth:`aggregate` returns the selected metric as a 0-d tensor;
    :meth:`aggregate_all` returns every metric (:func:`compute_disentanglement`).

    Args:
        metric: one of :data:`DISENTANGLEMENT_METRICS`.
        bins: histogram bins (``mi_estimator="histogram"``).
        mi_estimator: ``"knn"`` (default, as the seed via AR-VAE) or ``"histogram"``.
        n_neighbors: k of the k-NN MI estimator.
        random_state: seed of the k-NN estimator's jitter.
        scc_max_p: SCC's p-value filter (``None``: none).

    Example:
        >>> m = DisentanglementMetric("scc")
        >>> _ = m(torch.arange(8.0)[:, None], torch.arange(8.0)[:, None] ** 2)
        >>> m.aggregate().item()
        1.0
    """

    def __init__(
        self,
        metric: str = "interpretability",
        bins: int = 20,
        mi_estimator: str = "knn",
        n_neighbors: int = 3,
        random_state: int | None = 0,
        scc_max_p: float | None = 0.05,
    ) -> None:
        super().__init__()
        if metric not in DISENTANGLEMENT_METRICS:
            raise ValueError(f"metric must be one of {DISENTANGLEMENT_METRICS}; got {metric!r}")
        _check_estimator(mi_estimator, bins, n_neighbors)
        self.metric, self.bins, self.mi_estimator = metric, int(bins), mi_estimator
        self.n_neighbors, self.random_state, self.scc_max_p = int(n_neighbors), random_state, scc_max_p

    def _compute_tensor(self, y_pred: torch.Tensor, y: torch.Tensor | None = None, **kwargs: Any):  # type: ignore[override]
        if y is None:
            raise ValueError("DisentanglementMetric needs codes (y_pred) and attributes (y)")
        y_pred, y = torch.as_tensor(y_pred), torch.as_tensor(y)
        y_pred = y_pred.reshape(y_pred.shape[0], -1) if y_pred.ndim > 1 else y_pred[None]
        y = y.reshape(y.shape[0], -1) if y.ndim > 1 else y[None]
        return y_pred.detach().float(), y.detach().float()

    def _buffers_as_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        codes, attrs = self.get_buffer()
        return codes.cpu().numpy(), attrs.cpu().numpy()

    def _options(self) -> dict[str, Any]:
        return {
            "bins": self.bins,
            "mi_estimator": self.mi_estimator,
            "n_neighbors": self.n_neighbors,
            "random_state": self.random_state,
        }

    def aggregate_all(self) -> dict[str, Any]:
        return compute_disentanglement(*self._buffers_as_arrays(), **self._options(), scc_max_p=self.scc_max_p)

    def aggregate(self) -> torch.Tensor:  # type: ignore[override]
        """The selected metric over everything buffered; NaN (with a warning) when fewer than 2 codes."""
        z, y = self._buffers_as_arrays()
        if z.shape[0] < 2:
            warnings.warn(f"{self.metric} needs at least 2 codes, got {z.shape[0]}; returning NaN", stacklevel=2)
            return torch.tensor(float("nan"))
        if self.metric == "sap":
            value = sap_score(z, y)
        elif self.metric == "scc":
            value = scc_score(z, y, self.scc_max_p)
        else:
            opts = self._options()
            mi = mutual_information_matrix(z, y, **opts)
            if self.metric == "interpretability":
                value = interpretability(z, y, mi=mi)["mean"]
            elif self.metric == "modularity":
                value = modularity(mi)
            else:
                value = mig(mi, attribute_entropy(y, **opts))
        return torch.tensor(value)
