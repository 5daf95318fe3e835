"""Shared layers: generalized divisive normalization, a plain residual block, the body of a critic or patch
discriminator, and a sub-pixel convolution's shuffle (NHWC)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx


class GDN(nnx.Module):
  """Generalized divisive normalization (Ballé, Laparra, Simoncelli 2016):
  y_i = x_i / sqrt(beta_i + sum_j gamma_ij x_j^2), or its inverse (multiply) in synthesis transforms.

  beta and gamma are stored as square roots so they stay non-negative under any gradient step; a small
  floor keeps the denominator away from zero.
  """

  def __init__(self, channels: int, inverse: bool = False, *, rngs: nnx.Rngs | None = None):
    del rngs  # deterministic initialisation: identity-like normalisation
    self.inverse = inverse
    self.beta_root = nnx.Param(jnp.ones((channels,), jnp.float32))
    self.gamma_root = nnx.Param(jnp.sqrt(0.1) * jnp.eye(channels, dtype=jnp.float32))

  def __call__(self, x):
    beta = jnp.square(self.beta_root[...]) + 1e-6
    gamma = jnp.square(self.gamma_root[...])
    norm = jnp.sqrt(beta + jnp.einsum("...j,ij->...i", jnp.square(x), gamma))
    return x * norm if self.inverse else x / norm


class ResidualBlock(nnx.Module):
  """x + conv(relu(conv(x))), 3x3, EDSR-style (no normalization).

  The second convolution starts at zero, so every block starts as the identity (as in Goyal et al. 2017
  and SkipInit): with the default initialisation each unnormalised block adds about half the variance of
  its input, a deep stack multiplies activations, and L3C's paper-size predictor (8 blocks, chained over 3
  scales) then predicted log-scales near 90, whose exp(-90) underflows and made the first gradient NaN.
  The function class, and so every trained checkpoint, is unchanged.
  """

  def __init__(self, channels: int, *, rngs: nnx.Rngs):
    self.conv1 = nnx.Conv(channels, channels, (3, 3), rngs=rngs)
    self.conv2 = nnx.Conv(channels, channels, (3, 3), kernel_init=nnx.initializers.zeros, rngs=rngs)

  def __call__(self, x):
    return x + self.conv2(jax.nn.relu(self.conv1(x)))


def leaky_conv_stack(x, convs, norms, slope: float = 0.2):
  """``convs[i]``, then ``norms[i - 1]`` from the second layer on, then leaky ReLU, layer after layer:
  the body of a WGAN critic or a patch discriminator. -> (output, every layer's activation), the
  activations that feature matching compares."""
  features = []
  for index, conv in enumerate(convs):
    x = conv(x)
    if index:
      x = norms[index - 1](x)
    x = jax.nn.leaky_relu(x, slope)
    features.append(x)
  return x, features


def depth_to_space(x, factor: int):
  """N×H×W×(f²·C) -> N×(f·H)×(f·W)×C, channel (a·f + b)·C + c going to pixel (f·i + a, f·j + b): the shuffle
  of a sub-pixel convolution (Shi et al. 2016)."""
  batch, height, width, channels = x.shape
  out = channels // (factor * factor)
  x = x.reshape(batch, height, width, factor, factor, out).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(batch, height * factor, width * factor, out)
