"""Quantizers. The caller picks the training-time behaviour; entropy models only ever see the result."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx


def ste_round(x):
  """Rounds forward, identity gradient backward (straight-through estimator)."""
  return x + jax.lax.stop_gradient(jnp.round(x) - x)


def add_uniform_noise(x, key):
  """x + U(-1/2, 1/2): the differentiable stand-in for rounding in Ballé et al.'s training."""
  return x + jax.random.uniform(key, jnp.shape(x), jnp.float32, -0.5, 0.5)


def soft_to_hard(x, centers, sigma: float = 1.0):
  """Nearest-center quantization with soft gradients (Mentzer et al. 2018; Agustsson et al. 2017).

  Forward: the nearest center and its index. Backward: the gradient of the soft assignment
  sum_l softmax(-sigma * (x - c_l)^2)_l c_l, which reaches both x and the centers.
  Returns (quantized values, integer symbols) with symbols indexing ``centers``.
  """
  sq_dist = jnp.square(x[..., None] - centers)
  soft = jnp.sum(jax.nn.softmax(-sigma * sq_dist, axis=-1) * centers, axis=-1)
  symbols = jnp.argmin(sq_dist, axis=-1)
  hard = centers[symbols]
  return soft + jax.lax.stop_gradient(hard - soft), symbols


class LearnedCenters(nnx.Module):
  """L quantization centers trained with the model, initialised evenly in [low, high]."""

  def __init__(self, levels: int, low: float = -2.0, high: float = 2.0, sigma: float = 1.0,
               trainable: bool = True):
    init = jnp.linspace(low, high, levels, dtype=jnp.float32)
    self.centers = nnx.Param(init) if trainable else nnx.Variable(init)
    self.sigma = sigma

  def __call__(self, x):
    """-> (quantized values, symbols), see ``soft_to_hard``. Centers are sorted so symbols are ordered."""
    return soft_to_hard(x, jnp.sort(self.centers[...]), self.sigma)

  def dequantize(self, symbols):
    return jnp.sort(self.centers[...])[symbols]
