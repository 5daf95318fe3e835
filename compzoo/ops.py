"""Numerically delicate helpers, written once and shared by every entropy model."""

import jax
import jax.numpy as jnp

LN2 = 0.6931471805599453


def log_logistic_bin(lower, upper):
  """log(sigmoid(upper) - sigmoid(lower)) for lower < upper, stable in both tails.

  Uses sigmoid(b) - sigmoid(a) = sigmoid(b) * sigmoid(-a) * (1 - exp(a - b)), which never subtracts two
  numbers close to 1 (the usual cause of log(0) for sharp logistics). Pass +-inf for open-ended bins.
  """
  gap = upper - lower
  # log(1 - exp(-gap)): log(-expm1(-gap)) is accurate for small gaps, log1p(-exp(-gap)) for large ones.
  log_one_minus = jnp.where(gap < LN2, jnp.log(-jnp.expm1(-gap)), jnp.log1p(-jnp.exp(-gap)))
  return jax.nn.log_sigmoid(upper) + jax.nn.log_sigmoid(-lower) + log_one_minus


def nats_to_bits(nats):
  return nats / LN2
