"""Learned factorized density for any latent (Ballé, Minnen, Singh, Hwang, Johnston, ICLR 2018, appendix 6.1).

Each channel has its own monotone cumulative function c(x) = sigmoid(f_K(...f_1(x))), with
f_k(x) = g_k(softplus(H_k) x + b_k) and g_k(x) = x + tanh(a_k) * tanh(x); the probability of an integer
symbol y (or of a noisy y + u while training) is c(y + 1/2) - c(y - 1/2).

Coding uses explicit tables (``coding_tables``): per channel an integer range [lo, hi] holding all but a tiny
tail mass, plus one escape symbol; escaped symbols follow as raw 32-bit values. Tables are data built once
from the parameters (a codec caches them), never silently recomputed by a receiver.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from compzoo.entropy.coder import PRECISION, Decoder, Encoder, quantize_pmf, valid_frequencies
from compzoo.errors import BitstreamError, UsageError
from compzoo.ops import log_logistic_bin, nats_to_bits

_LIKELIHOOD_FLOOR = 1e-9
_TAIL_MASS = 1e-9
_SEARCH_RADIUS = 4096  # tables never extend beyond +-this; farther symbols are escaped.


@dataclasses.dataclass(frozen=True)
class FactorizedTables:
  """Integer coding tables: ``freqs[c]`` covers symbols ``offsets[c] + [0, len-1)`` plus a final escape."""

  offsets: np.ndarray  # (C,) int64
  freqs: tuple[np.ndarray, ...]  # C rows of integer frequencies (see quantize_pmf) summing to 2**24

  def to_arrays(self) -> dict:
    """Plain arrays, as exports store them (compzoo/exports.py)."""
    return {"offsets": np.asarray(self.offsets, np.int64), "freqs": [np.asarray(f, np.float32) for f in self.freqs]}

  @classmethod
  def from_arrays(cls, arrays, channels: int) -> "FactorizedTables":
    """Validates shipped tables: one row per channel, integers >= 1 summing to 2**24."""
    return cls(*ragged_tables(arrays, "offsets", channels, "factorized"))

  def min_bits_per_position(self) -> float:
    """The fewest bits one latent position (every channel) can cost: each channel's likeliest symbol."""
    return float(sum(PRECISION - np.log2(f.max()) for f in self.freqs))


def ragged_tables(arrays, key: str, count: int, owner: str, widths=None) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
  """Shipped tables of rows of different lengths: ``arrays[key]`` (one integer per row: an offset, a radius)
  and ``arrays['freqs']``, validated (``count`` rows of ``coder.valid_frequencies``, of ``widths`` if given)."""
  try:
    index = np.asarray(arrays[key], np.int64)
    freqs = tuple(np.asarray(f, np.float32) for f in arrays["freqs"])
  except (KeyError, TypeError, ValueError) as e:
    raise UsageError(f"{owner} coding tables are malformed: {e}") from None
  if index.shape != (count,) or len(freqs) != count or not all(f.ndim == 1 and valid_frequencies(f) for f in freqs) or (
      widths is not None and any(f.size != w for f, w in zip(freqs, widths(index)))):
    raise UsageError(f"{owner} coding tables do not fit {count} rows of {PRECISION}-bit frequencies")
  return index, freqs


class FactorizedDensity(nnx.Module):
  """Per-channel learned density over the last axis of the symbols (channels last)."""

  def __init__(self, channels: int, filters=(3, 3, 3), init_scale: float = 10.0, *, rngs: nnx.Rngs):
    self.channels = channels
    dims = (1, *filters, 1)
    scale = init_scale ** (1.0 / (len(filters) + 1))
    self.matrices = nnx.List()
    self.biases = nnx.List()
    self.factors = nnx.List()
    for k in range(len(filters) + 1):
      init = float(np.log(np.expm1(1.0 / scale / dims[k + 1])))
      self.matrices.append(nnx.Param(jnp.full((channels, dims[k + 1], dims[k]), init, jnp.float32)))
      self.biases.append(nnx.Param(jax.random.uniform(rngs.params(), (channels, dims[k + 1], 1), jnp.float32, -0.5, 0.5)))
      if k < len(filters):
        self.factors.append(nnx.Param(jnp.zeros((channels, dims[k + 1], 1), jnp.float32)))

  def cdf_logits(self, x):
    """x (C, n) -> logits of the cumulative (C, n); monotone increasing in x."""
    x = x[:, None, :]
    for k in range(len(self.matrices)):
      x = jnp.matmul(jax.nn.softplus(self.matrices[k][...]), x) + self.biases[k][...]
      if k < len(self.factors):
        x = x + jnp.tanh(self.factors[k][...]) * jnp.tanh(x)
    return x[:, 0, :]

  def bits(self, symbols, cond=None) -> jax.Array:
    symbols = jnp.asarray(symbols, jnp.float32)
    self._check(symbols.shape)
    by_channel = symbols.reshape(-1, self.channels).T
    log_p = log_logistic_bin(self.cdf_logits(by_channel - 0.5), self.cdf_logits(by_channel + 0.5))
    log_p = jnp.maximum(log_p, np.log(_LIKELIHOOD_FLOOR))
    return -nats_to_bits(log_p.T.reshape(symbols.shape))

  def coding_tables(self) -> FactorizedTables:
    grid = np.arange(-_SEARCH_RADIUS, _SEARCH_RADIUS + 1, dtype=np.float32)
    logits = np.asarray(jax.jit(self.cdf_logits)(jnp.broadcast_to(grid - 0.5, (self.channels, grid.size))))
    cdf_low = np.asarray(jax.nn.sigmoid(logits), np.float64)  # c(y - 1/2) for each grid point y
    offsets, freqs = [], []
    for c in range(self.channels):
      inside = np.nonzero((cdf_low[c] < 1 - _TAIL_MASS) & (np.append(cdf_low[c][1:], 1.0) > _TAIL_MASS))[0]
      lo, hi = (inside[0], inside[-1]) if inside.size else (_SEARCH_RADIUS, _SEARCH_RADIUS)
      upper = np.append(cdf_low[c][1:], 1.0)[lo:hi + 1]
      pmf = np.maximum(upper - cdf_low[c][lo:hi + 1], 0.0)
      escape = max(1.0 - pmf.sum(), _TAIL_MASS)
      offsets.append(int(grid[lo]))
      freqs.append(quantize_pmf(np.append(pmf, escape)[None])[0])
    return FactorizedTables(np.asarray(offsets, np.int64), tuple(freqs))

  def encode(self, symbols, cond=None, *, tables: FactorizedTables) -> bytes:
    symbols = np.asarray(symbols)
    self._check(symbols.shape)
    if not np.issubdtype(symbols.dtype, np.integer):
      raise UsageError(f"FactorizedDensity codes integer symbols, got {symbols.dtype}")
    by_channel = symbols.reshape(-1, self.channels).astype(np.int64)
    encoder, escaped = Encoder(), []
    for c in range(self.channels):
      escape = tables.freqs[c].size - 1
      index = by_channel[:, c] - tables.offsets[c]
      outside = (index < 0) | (index >= escape)
      encoder.put_table(np.where(outside, escape, index), tables.freqs[c])
      escaped.append(by_channel[outside, c])
    encoder.put_uniform(zigzag(np.concatenate(escaped)), 1 << 32)
    return encoder.finish()

  def decode(self, data: bytes, shape, cond=None, *, tables: FactorizedTables) -> np.ndarray:
    shape = tuple(shape)
    self._check(shape)
    count = int(np.prod(shape[:-1]))
    decoder = Decoder(data)
    by_channel = np.zeros((count, self.channels), np.int64)
    outside = np.zeros((count, self.channels), bool)
    for c in range(self.channels):
      escape = tables.freqs[c].size - 1
      index = decoder.get_table(count, tables.freqs[c])
      outside[:, c] = index == escape
      by_channel[:, c] = index + tables.offsets[c]
    raw = unzigzag(decoder.get_uniform(int(outside.sum()), 1 << 32))
    by_channel.T[outside.T] = raw  # escapes were written channel by channel
    if (by_channel < np.iinfo(np.int32).min).any() or (by_channel > np.iinfo(np.int32).max).any():
      raise BitstreamError("factorized stream decodes to values outside int32")
    return by_channel.astype(np.int32).reshape(shape)

  def _check(self, shape):
    if not shape or shape[-1] != self.channels:
      raise UsageError(f"FactorizedDensity({self.channels}) needs channels last, got shape {tuple(shape)}")


def zigzag(values):
  values = np.asarray(values, np.int64)
  return np.where(values >= 0, 2 * values, -2 * values - 1)


def unzigzag(values):
  values = np.asarray(values, np.int64)
  return np.where(values % 2 == 0, values // 2, -(values + 1) // 2)
