"""Uniform over L levels: fixed-rate codes (L3C's top scale, fixed-rate GAN/DPLC codes)."""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from compzoo.entropy.base import WholeStreams
from compzoo.entropy.coder import Decoder, Encoder
from compzoo.errors import UsageError


@dataclasses.dataclass(frozen=True)
class Uniform(WholeStreams):
  levels: int

  def __post_init__(self):
    if self.levels < 1:
      raise UsageError(f"Uniform needs at least one level, got {self.levels}")

  def bits(self, symbols, cond=None) -> jax.Array:
    return jnp.full(jnp.shape(symbols), math.log2(self.levels), jnp.float32)


  def encode_to(self, encoder: Encoder, symbols, cond=None) -> None:
    symbols = np.asarray(symbols)
    if symbols.size and (symbols.min() < 0 or symbols.max() >= self.levels):
      raise UsageError(f"symbols must lie in [0, {self.levels}), got [{symbols.min()}, {symbols.max()}]")
    encoder.put_uniform(symbols, self.levels)

  def decode_from(self, decoder: Decoder, shape, cond=None) -> np.ndarray:
    values = decoder.get_uniform(math.prod(shape), self.levels)
    return values.astype(np.int32).reshape(shape)
