"""Subspace clustering: points (the columns of X) that lie near a union of low-dimensional subspaces are grouped
by subspace. Every method builds an affinity between points, and one normalised spectral clustering path
(Ng, Jordan & Weiss 2001) turns it into labels:
  * SSC (Elhamifar & Vidal 2013): write each point as a sparse combination of the others (self-expression);
    points of one subspace use each other. The pursuit is the Lasso, or a greedy one: OMP (SSC-OMP) or MP
    (SSC-MP, Tschannen & Bölcskei 2018: robust to its stopping parameters where SSC-OMP is not);
    affinity |C| + |C|ᵀ.
  * TSC (Heckel & Bölcskei 2015): each point's q nearest neighbours in spherical distance, weighted
    exp(-2·arccos|<x_i, x_j>|).
Columns are normalised to unit length first. The number of clusters is given, or estimated by the largest gap
in the normalised Laplacian's spectrum.
"""

from __future__ import annotations

import numpy as np

from compzoo.errors import UsageError
from compzoo.sparse.pursuit import check_matrix, matching_pursuit, orthogonal_matching_pursuit

PURSUITS = ("mp", "omp", "lasso")


def unit_columns(points) -> np.ndarray:
  points = check_matrix(points, "X")
  norms = np.linalg.norm(points, axis=0)
  if not (norms > 0).all():
    raise UsageError("X has a zero column: a point on no subspace direction cannot be clustered")
  return points / norms


def self_expression(points, pursuit: str = "mp", max_steps: int = 10, tol: float = 0.0,
                    max_support: int | None = None, alpha: float = 0.05) -> np.ndarray:
  """C (N × N): column i writes point i in terms of the other (unit-norm) points, with C[i, i] = 0.
  ``alpha``: the Lasso's weight in ½||x - Xc||² + alpha·||c||₁ (no atom enters above alpha = 1: unit points)."""
  points = unit_columns(points)
  count = points.shape[1]
  if pursuit not in PURSUITS:
    raise UsageError(f"unknown pursuit {pursuit!r}; use one of {', '.join(PURSUITS)}")
  if pursuit == "lasso" and not (np.isfinite(alpha) and 0 < alpha < 1):
    raise UsageError(f"the Lasso's alpha must lie in (0, 1) for unit-norm points (at 1 no atom enters), got {alpha!r}")
  if pursuit == "mp":
    return matching_pursuit(points, points, max_steps, max_support, tol, exclude=np.arange(count))
  if pursuit == "omp":
    return orthogonal_matching_pursuit(points, points, max_steps, tol, exclude=np.arange(count))
  if pursuit == "lasso":
    from sklearn.linear_model import Lasso
    model = Lasso(alpha=alpha / points.shape[0], fit_intercept=False, max_iter=5000, tol=1e-5)
    coefficients = np.zeros((count, count))
    for i in range(count):
      others = points.copy()
      others[:, i] = 0.0  # a zero atom gets a zero weight: i cannot write itself
      coefficients[:, i] = model.fit(others, points[:, i]).coef_
    return coefficients
  raise AssertionError(pursuit)  # PURSUITS is checked above


def tsc_affinity(points, neighbours: int) -> np.ndarray:
  """TSC's affinity: for each point its ``neighbours`` largest |<x_i, x_j>| (j ≠ i), weighted
  exp(-2·arccos|<x_i, x_j>|), symmetrised."""
  points = unit_columns(points)
  count = points.shape[1]
  if not isinstance(neighbours, (int, np.integer)) or not 1 <= neighbours < count:
    raise UsageError(f"TSC needs 1 <= neighbours < number of points ({count}), got {neighbours}")
  similarity = np.clip(np.abs(points.T @ points), 0.0, 1.0)
  np.fill_diagonal(similarity, -1.0)
  nearest = np.argpartition(-similarity, neighbours - 1, axis=0)[:neighbours]
  columns = np.broadcast_to(np.arange(count), nearest.shape)
  weights = np.zeros((count, count))
  weights[nearest, columns] = np.exp(-2.0 * np.arccos(similarity[nearest, columns]))
  return weights + weights.T


def spectral_embedding(affinity: np.ndarray, clusters: int | None, max_clusters: int = 20):
  """(the rows of the normalised spectral embedding, the number of clusters) for a symmetric non-negative
  affinity; ``clusters=None`` picks the count with the largest eigengap of the normalised Laplacian."""
  from scipy.linalg import eigh
  affinity = np.asarray(affinity, np.float64)
  count = affinity.shape[0]
  degree = affinity.sum(axis=1)
  scale = np.where(degree > 0, 1.0 / np.sqrt(np.maximum(degree, 1e-300)), 0.0)
  normalised = scale[:, None] * affinity * scale[None, :]
  top = min(count, (clusters or max_clusters) + 1)
  values, vectors = eigh(normalised, subset_by_index=(count - top, count - 1))
  values, vectors = values[::-1], vectors[:, ::-1]  # largest first: the Laplacian's smallest
  if clusters is None:
    laplacian = 1.0 - values
    clusters = int(np.argmax(np.diff(laplacian[:max_clusters + 1]))) + 1
  embedding = vectors[:, :clusters]
  norms = np.linalg.norm(embedding, axis=1, keepdims=True)
  return embedding / np.where(norms > 0, norms, 1.0), clusters


def spectral_clustering(affinity, clusters: int | None = None, seed: int = 0, max_clusters: int = 20) -> np.ndarray:
  """Labels 0..k-1 of a symmetric non-negative affinity matrix (k given, or by the eigengap)."""
  from sklearn.cluster import KMeans
  affinity = np.asarray(affinity, np.float64)
  if affinity.ndim != 2 or affinity.shape[0] != affinity.shape[1] or not np.isfinite(affinity).all():
    raise UsageError(f"an affinity must be a finite square matrix, got shape {affinity.shape}")
  if (affinity < 0).any() or not np.allclose(affinity, affinity.T):
    raise UsageError("an affinity must be symmetric and non-negative")
  count = affinity.shape[0]
  _check_clusters(clusters, count)
  if clusters is None and count < 3:
    raise UsageError(f"estimating the number of clusters needs at least 3 points, got {count}")
  if not (affinity.sum(axis=1) > 0).all():
    raise UsageError(f"{int((affinity.sum(axis=1) <= 0).sum())} points have no affinity to any other "
                     "(a pursuit that stopped at once: tol or alpha too large?)")
  embedding, clusters = spectral_embedding(affinity, clusters, min(max_clusters, count - 1))
  return KMeans(clusters, n_init=20, random_state=seed).fit_predict(embedding)


def ssc(X, n_clusters: int | None, pursuit: str = "mp", max_steps: int = 10, tol: float = 0.0,
        max_support: int | None = None, alpha: float = 0.05, seed: int = 0) -> np.ndarray:
  """Sparse subspace clustering of the columns of X -> integer labels (one per column). ``pursuit``: 'mp'
  (SSC-MP), 'omp' (SSC-OMP) or 'lasso'; ``max_steps`` / ``max_support`` / ``tol``: the pursuit's stopping
  rules (module compzoo/sparse/pursuit.py); ``n_clusters=None``: estimated by the eigengap."""
  _check_clusters(n_clusters, np.shape(X)[1] if np.ndim(X) == 2 else 0)
  coefficients = self_expression(X, pursuit, max_steps, tol, max_support, alpha)
  return spectral_clustering(np.abs(coefficients) + np.abs(coefficients).T, n_clusters, seed)


def tsc(X, n_clusters: int | None, neighbours: int = 5, seed: int = 0) -> np.ndarray:
  """Thresholding-based subspace clustering of the columns of X -> integer labels."""
  _check_clusters(n_clusters, np.shape(X)[1] if np.ndim(X) == 2 else 0)
  return spectral_clustering(tsc_affinity(X, neighbours), n_clusters, seed)


def _check_clusters(clusters, count):
  if clusters is not None and (not isinstance(clusters, (int, np.integer)) or not 1 <= clusters <= count):
    raise UsageError(f"cannot make {clusters!r} clusters of {count} points (give an integer, or None to estimate)")


def clustering_error(labels, truth) -> float:
  """The fraction of points misclustered under the best matching of found clusters to true ones."""
  from scipy.optimize import linear_sum_assignment
  labels, truth = np.asarray(labels), np.asarray(truth)
  if labels.ndim != 1 or labels.shape != truth.shape or not labels.size:
    raise UsageError(f"labels and truth must be equally long and non-empty, got {labels.size} and {truth.size}")
  _, found = np.unique(labels, return_inverse=True)
  _, true = np.unique(truth, return_inverse=True)
  counts = np.zeros((found.max() + 1, true.max() + 1), np.int64)
  np.add.at(counts, (found, true), 1)
  rows, columns = linear_sum_assignment(-counts)
  return 1.0 - counts[rows, columns].sum() / labels.size
