"""Matching pursuit (MP) and orthogonal matching pursuit (OMP), batched over signals.

Both greedily pick, for each signal's residual r, the atom a maximising |<r, a>| / ||a||, until a stopping rule
holds (Tschannen & Bölcskei 2018 discuss which rule suits which pursuit):
  * ``max_steps``: iterations. OMP never picks an atom twice, so for OMP this is also its support size;
  * ``max_support``: MP only, atoms with a nonzero weight (MP may pick an atom again; default ``max_steps``);
  * ``tol``: stop once ||r|| <= tol (the residual threshold τ; it makes the support size data-dependent, which
    is how SSC-MP reads off a subspace's dimension).
MP then adds <r, a>/||a||² of the atom; OMP re-fits all picked atoms by least squares. ``exclude[i]`` is an atom
signal i may not use: itself, when a data set is written in terms of its other points (self-expression).
"""

from __future__ import annotations

import numpy as np

from compzoo.errors import UsageError


def check_matrix(matrix, name: str, columns: int | None = None) -> np.ndarray:
  """A finite 2-D float64 array (``columns``: how many it must have), else a one-line UsageError."""
  matrix = np.asarray(matrix)
  if matrix.ndim != 2 or 0 in matrix.shape:
    raise UsageError(f"{name} must be a non-empty 2-D array (features × points), got shape {matrix.shape}")
  if not np.issubdtype(matrix.dtype, np.number) or np.iscomplexobj(matrix):
    raise UsageError(f"{name} must hold real numbers, got dtype {matrix.dtype}")
  matrix = matrix.astype(np.float64)
  if not np.isfinite(matrix).all():
    raise UsageError(f"{name} holds NaN or infinite values")
  if columns is not None and matrix.shape[1] != columns:
    raise UsageError(f"{name} must have {columns} columns, got {matrix.shape[1]}")
  return matrix


def _setup(atoms, signals, max_steps, exclude):
  atoms, signals = check_matrix(atoms, "atoms"), check_matrix(signals, "signals")
  if atoms.shape[0] != signals.shape[0]:
    raise UsageError(f"atoms have {atoms.shape[0]} features, signals {signals.shape[0]}")
  if not isinstance(max_steps, (int, np.integer)) or max_steps < 1:
    raise UsageError(f"max_steps must be an integer of at least 1, got {max_steps!r}")
  if exclude is not None and atoms.shape[1] < 2:
    raise UsageError("self-expression needs at least two points")
  norms = np.linalg.norm(atoms, axis=0)
  if not (norms > 0).all():
    raise UsageError("an atom is zero: it cannot be picked or normalised")
  if exclude is not None:
    exclude = np.asarray(exclude, np.int64)
    if exclude.shape != (signals.shape[1],) or exclude.min() < 0 or exclude.max() >= atoms.shape[1]:
      raise UsageError("exclude must give one atom index per signal")
  return atoms, signals, norms, exclude


def _pick(atoms, norms, residuals, exclude, columns, banned=None):
  """Index of the atom best correlated (in absolute value, normalised) with each residual of ``columns``."""
  scores = np.abs(atoms.T @ residuals) / norms[:, None]
  if exclude is not None:
    scores[exclude[columns], np.arange(len(columns))] = -1.0
  if banned is not None:
    scores[banned] = -1.0
  return np.argmax(scores, axis=0)


def check_tol(tol) -> float:
  if not np.isfinite(tol) or tol < 0:
    raise UsageError(f"tol (the residual threshold) must be finite and >= 0, got {tol!r}")
  return float(tol)


def matching_pursuit(atoms, signals, max_steps: int, max_support: int | None = None, tol: float = 0.0,
                     exclude=None) -> np.ndarray:
  """MP of each column of ``signals`` (m × k) over the columns of ``atoms`` (m × n) -> weights (n × k)."""
  atoms, signals, norms, exclude = _setup(atoms, signals, max_steps, exclude)
  tol = check_tol(tol)
  max_support = max_steps if max_support is None else max_support
  if not isinstance(max_support, (int, np.integer)) or max_support < 1:
    raise UsageError(f"max_support must be an integer of at least 1, got {max_support!r}")
  weights = np.zeros((atoms.shape[1], signals.shape[1]))
  residuals = signals.copy()
  for _ in range(int(max_steps)):
    active = np.flatnonzero((np.linalg.norm(residuals, axis=0) > tol)
                            & ((weights != 0).sum(axis=0) < max_support))
    if not len(active):
      break
    picked = _pick(atoms, norms, residuals[:, active], exclude, active)
    steps = np.einsum("mk,mk->k", atoms[:, picked], residuals[:, active]) / norms[picked] ** 2
    weights[picked, active] += steps
    residuals[:, active] -= atoms[:, picked] * steps
  return weights


def orthogonal_matching_pursuit(atoms, signals, max_steps: int, tol: float = 0.0, exclude=None) -> np.ndarray:
  """OMP of each column of ``signals`` over the columns of ``atoms`` -> weights (n × k); at most ``max_steps``
  atoms each, fewer once the residual is within ``tol``."""
  atoms, signals, norms, exclude = _setup(atoms, signals, max_steps, exclude)
  tol = check_tol(tol)
  weights = np.zeros((atoms.shape[1], signals.shape[1]))
  usable = atoms.shape[1] - (exclude is not None)  # OMP never picks an atom twice, nor the excluded one
  for column in range(signals.shape[1]):
    signal, support, residual = signals[:, column], [], signals[:, column]
    for _ in range(min(int(max_steps), atoms.shape[0], usable)):
      if np.linalg.norm(residual) <= tol:
        break
      picked = int(_pick(atoms, norms, residual[:, None], exclude, np.asarray([column]), banned=support)[0])
      support.append(picked)
      fit, *_ = np.linalg.lstsq(atoms[:, support], signal, rcond=None)
      residual = signal - atoms[:, support] @ fit
    if support:
      weights[support, column] = fit
  return weights
