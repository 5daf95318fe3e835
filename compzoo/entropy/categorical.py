"""Categorical over L symbols from any network's logits (context models), and Bernoulli (binary codes)."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from compzoo.entropy.base import ConditionalModel
from compzoo.ops import nats_to_bits


@dataclasses.dataclass(frozen=True)
class Categorical(ConditionalModel):
  """``cond[..., :]`` holds the L logits of each symbol (shape ``symbols.shape + (L,)``)."""

  levels: int

  @property
  def num_params(self) -> int:
    return self.levels

  def bits(self, symbols, cond=None) -> jax.Array:
    log_p = jax.nn.log_softmax(cond, axis=-1)
    index = jnp.asarray(symbols).astype(jnp.int32)[..., None]  # targets carry no gradient
    return -nats_to_bits(jnp.take_along_axis(log_p, index, axis=-1)[..., 0])

  def probabilities(self, rows, context=None) -> jax.Array:
    return jax.nn.softmax(rows, axis=-1)


@dataclasses.dataclass(frozen=True)
class Bernoulli(ConditionalModel):
  """Binary symbols; ``cond`` holds one logit of P(symbol = 1) per symbol (shape ``symbols.shape``)."""

  levels = 2
  num_params = 1

  @property
  def cond_shape_suffix(self) -> tuple[int, ...]:
    return ()

  def bits(self, symbols, cond=None) -> jax.Array:
    symbols = jnp.asarray(symbols, jnp.float32)
    log_p = symbols * jax.nn.log_sigmoid(cond) + (1 - symbols) * jax.nn.log_sigmoid(-cond)
    return -nats_to_bits(log_p)

  def probabilities(self, rows, context=None) -> jax.Array:
    logit = rows[:, 0]
    return jnp.exp(jnp.stack([jax.nn.log_sigmoid(-logit), jax.nn.log_sigmoid(logit)], axis=-1))


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
