"""Greedy minimisation over the conic hull of an atom set (Locatello, Tschannen, Rätsch & Jaggi, NIPS 2017):
min f(x) over x = Σ α_i a_i, α ≥ 0, for a smooth convex f.

Each iteration asks the linear minimisation oracle for z = argmin_{a in A} <∇f(x), a> and moves along a
direction chosen by the variant; steps are exact line searches (``Quadratic``) or <-∇f, d>/(L||d||²), clamped so
the weights stay non-negative:
  * ``nnmp``: z, or back along the iterate itself (d = -x/Σα, shrinking every weight; γ ≤ Σα);
  * ``amp`` (away steps): z, or away from the active atom v most aligned with ∇f (γ ≤ α_v: a drop step);
  * ``pwmp`` (pairwise): d = z - v (γ ≤ α_v), v chosen among the active atoms and the origin (v = 0: a plain
    step to z; without it a pairwise step could never change Σα);
  * ``fcmp`` (fully corrective): add z to the active set and re-solve f over its cone exactly (NNLS for
    quadratics).
O(1/t) on smooth objectives for all four; linear on strongly convex ones for AMP, PWMP and FCMP (the paper's
Theorems), which plain NNMP lacks. The atom set is a matrix (its columns) or any oracle.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from compzoo.errors import UsageError
from compzoo.sparse.pursuit import check_matrix, check_tol

VARIANTS = ("nnmp", "amp", "pwmp", "fcmp")


@dataclasses.dataclass
class Quadratic:
  """f(x) = ½||P(x - y)||² (P: None for the identity, or a matrix; a rank-deficient P gives a smooth objective
  that is not strongly convex)."""

  y: np.ndarray
  projection: np.ndarray | None = None

  def _apply(self, v):
    return v if self.projection is None else self.projection @ v

  def value(self, x) -> float:
    residual = self._apply(x - self.y)
    return 0.5 * float(residual @ residual)

  def gradient(self, x) -> np.ndarray:
    residual = self._apply(x - self.y)
    return residual if self.projection is None else self.projection.T @ residual

  def step(self, x, direction) -> float:
    """The exact line-search step along ``direction`` (unclamped)."""
    curvature = self._apply(direction)
    denominator = float(curvature @ curvature)
    return 0.0 if denominator <= 0 else float(-self.gradient(x) @ direction) / denominator

  def cone_minimum(self, atoms: np.ndarray) -> np.ndarray:
    """argmin over α ≥ 0 of f(atoms α): non-negative least squares."""
    from scipy.optimize import nnls
    return nnls(self._apply(atoms), self._apply(self.y), maxiter=50 * atoms.shape[1] + 100)[0]


class MatrixAtoms:
  """The atom set of a matrix's columns: the oracle is an argmin over them."""

  def __init__(self, atoms):
    self.atoms = check_matrix(atoms, "atoms")

  def __call__(self, gradient) -> int:
    return int(np.argmin(gradient @ self.atoms))

  def atom(self, key) -> np.ndarray:
    return self.atoms[:, key]


@dataclasses.dataclass
class ConeResult:
  weights: dict  # atom key -> weight > 0
  x: np.ndarray
  values: list  # f(x_t) after each iteration (values[0]: f(0))


def cone_pursuit(objective: Quadratic, atoms, variant: str = "amp", iterations: int = 100,
                 smoothness: float | None = None) -> ConeResult:
  """Minimises ``objective`` over the cone of ``atoms`` (a matrix, or an oracle object with ``__call__(gradient) ->
  key`` and ``atom(key) -> vector``). ``smoothness``: L, for objectives without an exact ``step``."""
  if variant not in VARIANTS:
    raise UsageError(f"unknown cone pursuit {variant!r}; use one of {', '.join(VARIANTS)}")
  atom_set = atoms if hasattr(atoms, "atom") else MatrixAtoms(atoms)
  y = np.asarray(objective.y, np.float64)
  if y.ndim != 1 or not np.isfinite(y).all():
    raise UsageError(f"the objective's y must be a finite vector, got shape {y.shape}")
  if isinstance(atom_set, MatrixAtoms) and atom_set.atoms.shape[0] != y.size:
    raise UsageError(f"atoms have {atom_set.atoms.shape[0]} dimensions, y has {y.size}")
  if smoothness is not None and not (np.isfinite(smoothness) and smoothness > 0):
    raise UsageError(f"smoothness (L) must be finite and > 0, got {smoothness!r}")
  x = np.zeros_like(y)
  weights: dict = {}
  values = [objective.value(x)]
  for _ in range(int(iterations)):
    gradient = objective.gradient(x)
    best = atom_set(gradient)
    z = atom_set.atom(best)
    forward = float(-gradient @ z)  # how much z descends
    if variant == "fcmp":
      if forward <= 0:
        break
      weights.setdefault(best, 0.0)
      keys = list(weights)
      solved = objective.cone_minimum(np.stack([atom_set.atom(k) for k in keys], axis=1))
      weights = {k: w for k, w in zip(keys, solved) if w > 0}
      x = _combine(atom_set, weights, x)
      values.append(objective.value(x))
      continue
    direction, limit, away = _direction(variant, gradient, z, forward, weights, atom_set, x)
    if direction is None:
      break
    gamma = objective.step(x, direction) if smoothness is None else (
        float(-gradient @ direction) / (smoothness * float(direction @ direction)))
    gamma = min(max(gamma, 0.0), limit)
    if gamma <= 0:
      break
    _update(variant, weights, best, away, gamma, limit)
    x = _combine(atom_set, weights, x)
    values.append(objective.value(x))
  return ConeResult(weights, x, values)


def _direction(variant, gradient, z, forward, weights, atom_set, x):
  """(direction, largest step, the atom moved away from) or (None, ...) at a stationary point."""
  if variant == "nnmp":
    total = sum(weights.values())
    backward = float(gradient @ x) / total if total > 0 else -np.inf  # <-∇f, -x/Σα>
    if forward >= backward:
      return (z, np.inf, None) if forward > 0 else (None, 0, None)
    return -x / total, total, "all"
  if not weights:
    return (z, np.inf, None) if forward > 0 else (None, 0, None)
  away = max(weights, key=lambda k: float(gradient @ atom_set.atom(k)))
  v = atom_set.atom(away)
  backward = float(gradient @ v)
  if variant == "amp":
    if forward >= backward:
      return (z, np.inf, None) if forward > 0 else (None, 0, None)
    return -v, weights[away], away
  if backward <= 0:  # pwmp: the origin (weight unbounded, <∇f, 0> = 0) is the worst "active atom": step to z
    return (z, np.inf, None) if forward > 0 else (None, 0, None)
  if forward + backward <= 0:
    return None, 0, None
  return z - v, weights[away], away


def _update(variant, weights, best, away, gamma, limit):
  if away == "all":  # nnmp's backward step scales every weight
    scale = 1.0 - gamma / limit
    for key in list(weights):
      weights[key] *= scale
      if weights[key] <= 0:
        del weights[key]
    return
  if away is None or variant == "pwmp":
    weights[best] = weights.get(best, 0.0) + gamma
  if away is not None:
    weights[away] -= gamma
    if weights[away] <= 1e-15 * max(1.0, gamma) or gamma >= limit:
      del weights[away]


def _combine(atom_set, weights, like):
  x = np.zeros_like(like)
  for key, weight in weights.items():
    x += weight * atom_set.atom(key)
  return x


def fcmp_codes(atoms, signals, steps: int, tol: float = 0.0) -> np.ndarray:
  """``cone_pursuit(Quadratic(y), atoms, "fcmp", steps)``'s weights for every column y of ``signals`` at once:
  (atoms, signals), each signal stopping early once its residual norm is <= ``tol``. The oracle runs batched;
  each signal's re-fit is its own small NNLS."""
  atoms, signals = check_matrix(atoms, "atoms"), check_matrix(signals, "signals")
  if atoms.shape[0] != signals.shape[0]:
    raise UsageError(f"atoms have {atoms.shape[0]} dimensions, signals {signals.shape[0]}")
  if not isinstance(steps, (int, np.integer)) or steps < 1:
    raise UsageError(f"steps must be an integer of at least 1, got {steps!r}")
  tol = check_tol(tol)
  weights = np.zeros((atoms.shape[1], signals.shape[1]))
  residuals = signals.copy()
  active = [np.zeros(0, np.int64) for _ in range(signals.shape[1])]
  for _ in range(int(steps)):
    scores = atoms.T @ residuals  # <-∇f, a> for f = ½||x - y||²
    best = np.argmax(scores, axis=0)
    going = (scores[best, np.arange(best.size)] > 0) & (np.linalg.norm(residuals, axis=0) > tol)
    for n in np.nonzero(going)[0]:
      if best[n] in active[n]:
        continue  # the re-fit is optimal over the active cone already: nothing descends
      keys = np.append(active[n], best[n])
      try:
        solved = Quadratic(signals[:, n]).cone_minimum(atoms[:, keys])  # cone_pursuit's FCMP re-fit
      except RuntimeError:  # scipy's NNLS gave up (degenerate atoms): this signal keeps the weights it has
        continue
      weights[:, n] = 0.0
      weights[keys, n] = solved
      active[n] = keys[solved > 0]
      residuals[:, n] = signals[:, n] - atoms[:, keys] @ solved
  return weights
