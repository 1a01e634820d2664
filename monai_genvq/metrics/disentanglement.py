"""Disentanglement metrics of latent codes against continuous attributes (vectorised numpy).

Definitions (``docs/METRICS.md``), with codes ``z`` (N, D) and attributes ``y`` (N, K):

* mutual information ``I(z_i; y_k)``: fixed-bin histogram estimator (``bins`` equal-width bins
  between each column's min and max), in nats; deterministic.
* Interpretability (Adel et al. 2018, as in AR-VAE / Attri-VAE): ``d* = argmax_i I(z_i; y_k)``,
  score = R² of the 1-D linear regression of ``y_k`` on ``z_d*``; per attribute and mean.
* Modularity (Ridgeway & Mozer 2018): ``θ_i = max_k m_ik²``,
  ``δ_i = (Σ_k m_ik² − θ_i) / (θ_i (K − 1))``, ``1 − δ_i`` (0 where ``θ_i = 0``), mean over codes.
* SAP (Kumar et al. 2018): ``S_ik = cov(z_i, y_k)² / (var z_i var y_k)`` (0 where ``var z_i ≈ 0``),
  mean over attributes of (largest − second largest) of ``S_·k``.
* SCC: ``|Spearman ρ(z_i, y_k)|``, mean over attributes of the max over codes.
* MIG (Chen et al. 2018): mean over attributes of (top1 − top2 of ``I(·; y_k)``) / ``H(y_k)``.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
from monai.metrics import CumulativeIterationMetric

__all__ = [
    "DISENTANGLEMENT_METRICS",
    "DisentanglementMetric",
    "compute_disentanglement",
    "discretize",
    "entropy_discrete",
    "interpretability",
    "mig",
    "modularity",
    "mutual_information_matrix",
    "sap_score",
    "scc_score",
]

DISENTANGLEMENT_METRICS = ("interpretability", "modularity", "sap", "scc", "mig")
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


def discretize(x: np.ndarray, bins: int = 20) -> np.ndarray:
    """Equal-width bin index (0..bins-1) of each column between its min and max (constant column -> 0)."""
    lo, hi = x.min(0), x.max(0)
    width = np.where(hi - lo > 0, (hi - lo) / bins, 1.0)
    return np.clip(((x - lo) / width).astype(np.int64), 0, bins - 1)


def entropy_discrete(y: Any, bins: int = 20) -> np.ndarray:
    """Entropy (nats) of each discretised column of ``y``."""
    y = _as_2d(y, "attributes")
    idx = discretize(y, bins)
    k = y.shape[1]
    counts = np.bincount((idx + np.arange(k) * bins).ravel(), minlength=k * bins).reshape(k, bins)
    p = counts / y.shape[0]
    return -(p * np.log(np.where(p > 0, p, 1.0))).sum(1)


def mutual_information_matrix(z: Any, y: Any, bins: int = 20) -> np.ndarray:
    """(D, K) matrix of ``I(z_i; y_k)`` (nats) from fixed-bin joint histograms, all pairs in one bincount."""
    z, y = _check_pair(z, y)
    n, d = z.shape
    k = y.shape[1]
    zi, yi = discretize(z, bins), discretize(y, bins)
    pair = (np.arange(d)[:, None] * k + np.arange(k)[None, :]) * bins * bins  # (D, K)
    codes = zi[:, :, None] * bins + yi[:, None, :] + pair[None]  # (N, D, K)
    joint = np.bincount(codes.ravel(), minlength=d * k * bins * bins).reshape(d, k, bins, bins) / n
    pz = joint.sum(3, keepdims=True)
    py = joint.sum(2, keepdims=True)
    ratio = np.where(joint > 0, joint / np.maximum(pz * py, _EPS), 1.0)
    return (joint * np.log(ratio)).sum((2, 3))


def interpretability(z: Any, y: Any, bins: int = 20, mi: np.ndarray | None = None) -> dict[str, Any]:
    """Interpretability: per attribute the most informative code ``d*`` and the R² of ``y_k ~ a z_d* + b``.

    Returns:
        ``{"dims": [d*_k], "scores": [R²_k], "mean": mean_k R²_k}``.

    Example:
        >>> z = np.array([[0., 5.], [1., 3.], [2., 9.], [3., 1.]]); y = 2 * z[:, :1] + 1
        >>> interpretability(z, y, bins=4)["scores"]
        [1.0]
    """
    z, y = _check_pair(z, y)
    mi = mutual_information_matrix(z, y, bins) if mi is None else mi
    dims = np.argmax(mi, axis=0)
    zs = z[:, dims]
    zc, yc = zs - zs.mean(0), y - y.mean(0)
    cov = (zc * yc).mean(0)
    var_z, var_y = (zc**2).mean(0), (yc**2).mean(0)
    r2 = np.where((var_z > _EPS) & (var_y > _EPS), cov**2 / np.maximum(var_z * var_y, _EPS), 0.0)
    return {"dims": dims.tolist(), "scores": r2.tolist(), "mean": float(r2.mean())}


def modularity(mi: np.ndarray) -> float:
    """Ridgeway & Mozer's modularity from a (D, K) mutual-information matrix (mean over codes)."""
    mi = np.asarray(mi, np.float64)
    k = mi.shape[1]
    sq = mi**2
    theta = sq.max(1)
    if k < 2:
        return 1.0
    delta = (sq.sum(1) - theta) / np.maximum(theta * (k - 1), _EPS)
    return float(np.where(theta > 0, 1.0 - delta, 0.0).mean())


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


def scc_score(z: Any, y: Any) -> float:
    """SCC: mean over attributes of max over codes of ``|Spearman ρ(z_i, y_k)|``.

    Example:
        >>> z = np.array([[0., 3.], [1., 2.], [5., 1.], [9., 0.]]); y = np.array([[1.], [2.], [3.], [4.]])
        >>> scc_score(z, y)
        1.0
    """
    z, y = _check_pair(z, y)
    rz, ry = _ranks(z), _ranks(y)
    rz, ry = rz - rz.mean(0), ry - ry.mean(0)
    denom = np.sqrt(np.outer((rz**2).sum(0), (ry**2).sum(0)))
    rho = np.where(denom > _EPS, (rz.T @ ry) / np.maximum(denom, _EPS), 0.0)
    return float(np.abs(rho).max(0).mean())


def mig(mi: np.ndarray, entropy_y: np.ndarray) -> float:
    """Mutual information gap from a (D, K) MI matrix and the attributes' entropies."""
    gap = _top2_gap(np.asarray(mi, np.float64))
    return float(np.where(entropy_y > _EPS, gap / np.maximum(entropy_y, _EPS), 0.0).mean())


def compute_disentanglement(z: Any, y: Any, bins: int = 20) -> dict[str, Any]:
    """All metrics at once (one MI matrix shared by Interpretability, Modularity and MIG).

    Returns:
        ``{"interpretability": mean, "interpretability_per_attribute": {"dims", "scores"},
        "modularity", "sap", "scc", "mig", "bins", "n"}``.
    """
    z, y = _check_pair(z, y)
    mi = mutual_information_matrix(z, y, bins)
    interp = interpretability(z, y, bins, mi=mi)
    return {
        "interpretability": interp["mean"],
        "interpretability_per_attribute": {"dims": interp["dims"], "scores": interp["scores"]},
        "modularity": modularity(mi),
        "sap": sap_score(z, y),
        "scc": scc_score(z, y),
        "mig": mig(mi, entropy_discrete(y, bins)),
        "bins": int(bins),
        "n": int(z.shape[0]),
    }


class DisentanglementMetric(CumulativeIterationMetric):
    """Accumulates latent codes and attributes over iterations; aggregates one disentanglement metric.

    Each call buffers ``y_pred`` (codes, (B, D) — the posterior mean μ by convention) and ``y``
    (attributes, (B, K)). :meth:`aggregate` returns the selected metric as a 0-d tensor;
    :meth:`aggregate_all` returns every metric (:func:`compute_disentanglement`).

    Args:
        metric: one of :data:`DISENTANGLEMENT_METRICS`.
        bins: histogram bins of the mutual-information estimator.

    Example:
        >>> m = DisentanglementMetric("scc")
        >>> _ = m(torch.arange(8.0)[:, None], torch.arange(8.0)[:, None] ** 2)
        >>> m.aggregate().item()
        1.0
    """

    def __init__(self, metric: str = "interpretability", bins: int = 20) -> None:
        super().__init__()
        if metric not in DISENTANGLEMENT_METRICS:
            raise ValueError(f"metric must be one of {DISENTANGLEMENT_METRICS}; got {metric!r}")
        self.metric, self.bins = metric, int(bins)

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

    def aggregate_all(self) -> dict[str, Any]:
        return compute_disentanglement(*self._buffers_as_arrays(), bins=self.bins)

    def aggregate(self) -> torch.Tensor:  # type: ignore[override]
        """The selected metric over everything buffered; NaN (with a warning) when fewer than 2 codes."""
        z, y = self._buffers_as_arrays()
        if z.shape[0] < 2:
            warnings.warn(f"{self.metric} needs at least 2 codes, got {z.shape[0]}; returning NaN", stacklevel=2)
            return torch.tensor(float("nan"))
        if self.metric == "sap":
            value = sap_score(z, y)
        elif self.metric == "scc":
            value = scc_score(z, y)
        elif self.metric == "interpretability":
            value = interpretability(z, y, self.bins)["mean"]
        else:
            mi = mutual_information_matrix(z, y, self.bins)
            value = modularity(mi) if self.metric == "modularity" else mig(mi, entropy_discrete(y, self.bins))
        return torch.tensor(value)
