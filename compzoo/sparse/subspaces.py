"""Synthetic unions of subspaces, as the subspace-clustering papers draw them: each subspace a random orthonormal
basis (``shared`` of its dimensions common to all, so the subspaces intersect), points uniform on its unit sphere,
plus Gaussian noise of total standard deviation ``noise`` (noise/√m per entry), columns scaled to unit length."""

from __future__ import annotations

import numpy as np

from compzoo.errors import UsageError


def union_of_subspaces(rng: np.random.Generator, ambient: int, dimensions, shared: int = 0, points=60,
                       noise: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
  """-> (X: ambient × N, unit-norm columns; the subspace of each column). ``points``: per subspace (an int or
  one per subspace)."""
  dimensions = list(dimensions)
  counts = [points] * len(dimensions) if np.isscalar(points) else list(points)
  if not dimensions or len(counts) != len(dimensions) or min(dimensions) <= shared or max(dimensions) > ambient:
    raise UsageError(f"subspaces of dimensions {dimensions} sharing {shared} do not fit in {ambient} dimensions")
  common = rng.standard_normal((ambient, shared))
  columns, truth = [], []
  for label, (dimension, count) in enumerate(zip(dimensions, counts)):
    basis = np.linalg.qr(np.concatenate([common, rng.standard_normal((ambient, dimension - shared))], axis=1))[0]
    coefficients = rng.standard_normal((dimension, count))
    coefficients /= np.linalg.norm(coefficients, axis=0)
    columns.append(basis @ coefficients + noise / np.sqrt(ambient) * rng.standard_normal((ambient, count)))
    truth += [label] * count
  x = np.concatenate(columns, axis=1)
  return x / np.linalg.norm(x, axis=0), np.asarray(truth)
