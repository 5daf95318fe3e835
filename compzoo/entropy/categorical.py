"""Grid logits: categoricals whose logits live on a 1/16 grid, so their integer tables are exact everywhere."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


# Categoricals whose logits live on a grid of 1/LOGIT_STEPS: the probability table of a row depends only on
# integers, so two machines that agree on the integers (see compzoo/models/cpm.py) agree on every table.
LOGIT_STEPS = 16
# Learned tables store their logits divided by this, so Adam's bounded steps move them usefully fast.
TABLE_SCALE = 10.0
_EXP_TABLE = np.maximum(1.0, np.round(2.0**15 * np.exp(-np.arange(256) / LOGIT_STEPS)))


def grid_logits(logits):
  """Logits rounded to the 1/LOGIT_STEPS grid, straight-through: train on the distribution that is coded."""
  return logits + jax.lax.stop_gradient(jnp.round(logits * LOGIT_STEPS) / LOGIT_STEPS - logits)


def pmf_from_grid_logits(logits) -> np.ndarray:
  """Rows of grid logits (floats that are exact multiples of 1/LOGIT_STEPS) -> float32 probability rows,
  through an integer lookup table and one correctly rounded division: no exp, no float reduction."""
  steps = np.round(np.asarray(logits, np.float64) * LOGIT_STEPS).astype(np.int64)
  gap = np.minimum(steps.max(axis=-1, keepdims=True) - steps, len(_EXP_TABLE) - 1)
  weights = _EXP_TABLE[gap]
  return (weights / weights.sum(axis=-1, keepdims=True)).astype(np.float32)
