"""The interface of the per-symbol entropy models (uniform, logistic mixture, factorized density).

An entropy model answers two questions about integer symbols:
  * ``bits(symbols, cond)``: how many bits, differentiable, for the training loss (a JAX array of per-symbol
    bits shaped like ``symbols``);
  * ``encode(symbols, cond) -> bytes`` / ``decode(data, shape, cond) -> symbols``: which bytes, for real coding;
    ``encode_to(encoder, ...)`` / ``decode_from(decoder, ...)`` do the same on a stream shared with other models.
``cond`` is what a network predicts for the symbols (logits, mixture parameters), ``None`` for models that
own their parameters (the factorized density) or have none (uniform).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Protocol, runtime_checkable

import jax
import numpy as np

from compzoo.entropy.coder import Decoder, Encoder
from compzoo.errors import UsageError

# Rows of float probabilities computed at once while coding: bounds memory to about this many floats.
_FLOATS_PER_CHUNK = 1 << 22


@runtime_checkable
class EntropyModel(Protocol):

  def bits(self, symbols, cond=None) -> jax.Array:
    ...

  def encode(self, symbols, cond=None) -> bytes:
    ...

  def decode(self, data: bytes, shape, cond=None) -> np.ndarray:
    ...


class WholeStreams:
  """``encode``/``decode`` of a stream of one model's symbols, from its ``encode_to``/``decode_from``."""

  def encode(self, symbols, cond=None) -> bytes:
    encoder = Encoder()
    self.encode_to(encoder, symbols, cond)
    return encoder.finish()

  def decode(self, data: bytes, shape, cond=None) -> np.ndarray:
    return self.decode_from(Decoder(data), shape, cond)


@dataclasses.dataclass(frozen=True)
class ConditionalModel(WholeStreams):
  """A family whose distribution for each symbol comes from one row of ``num_params`` numbers in ``cond``.

  Subclasses give ``levels``, ``num_params``, ``bits`` and ``encode_to``/``decode_from`` (coding on a
  stream shared with other models); coding evaluates rows in fixed-size, zero-padded chunks
  (``chunk_size``, ``pad_rows``) with one compiled function per chunk shape, so encoder and decoder compute
  bit-identical floats for the same rows.
  """

  @property
  def cond_shape_suffix(self) -> tuple[int, ...]:
    return (self.num_params,)

  def cost_per_row(self) -> int:
    """Floats held per row while computing probabilities; sets the chunk size."""
    return self.levels + self.num_params

  def _checked(self, symbols) -> np.ndarray:
    symbols = np.asarray(symbols).reshape(-1)
    if symbols.size and (symbols.min() < 0 or symbols.max() >= self.levels):
      raise UsageError(f"symbols must lie in [0, {self.levels}), got [{symbols.min()}, {symbols.max()}]")
    return symbols

  def _rows(self, shape, cond) -> np.ndarray:
    cond = np.asarray(cond, dtype=np.float32)
    expected = tuple(shape) + self.cond_shape_suffix
    if cond.shape != expected:
      raise UsageError(f"{type(self).__name__}: cond has shape {cond.shape}, expected {expected}")
    return cond.reshape(math.prod(shape), -1)


def chunk_size(total: int, cost_per_row: int) -> int:
  """Rows per chunk: a power of two, at most what ``_FLOATS_PER_CHUNK`` allows, no more than ``total`` needs."""
  limit = max(1, _FLOATS_PER_CHUNK // cost_per_row)
  return min(1 << (limit.bit_length() - 1), 1 << max(0, (total - 1).bit_length()))


def pad_rows(block, size):
  """``block`` with zero rows appended up to ``size`` (itself when it has them)."""
  block = np.asarray(block)
  if block.shape[0] == size:
    return block
  return np.concatenate([block, np.zeros((size - block.shape[0],) + block.shape[1:], block.dtype)])
