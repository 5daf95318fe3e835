"""Indexed location-scale coding: a Gaussian per symbol, its scale picked from a fixed, shipped table.

A hyperprior predicts a mean μ and a scale σ for every latent y (Ballé et al. 2018, Minnen et al. 2018). The
code is q = round(y - μ), read back as ŷ = q + μ. Training measures
    bits(q) = -log2(Φ((q + 1/2) / σ) - Φ((q - 1/2) / σ))
on continuous σ. Coding cannot use a table per float σ, so σ is mapped to an integer index into a fixed
ladder of scales (64 log-spaced values from 0.11 to 256, the smallest table scale >= σ), and each ladder
entry has one integer table over [-r, r] plus an escape, with r covering all but ~1e-9 of the mass. Escaped
values follow Elias-gamma style: each one's bit length, then its bits below the leading one. The tables depend on the ladder only: they are built once and shipped
in the export (``tables.msgpack``); a decoder validates them and never rebuilds them.

``folded`` tables code non-negative symbols (q >= 0, no sign: a non-negative pursuit's coefficients) under the
same ladder: a half-normal over [0, r], P(0) the Gaussian's central bin and P(q) twice its bin q.

The indexes come from the network's float σ, so a decoder on another backend may pick a neighbouring table
for a symbol whose σ lies on a ladder step; the file's symbol check turns that into a BitstreamError.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
from scipy import special

from compzoo.entropy.coder import PRECISION, Decoder, Encoder, quantize_pmf
from compzoo.entropy.factorized import ragged_tables, unzigzag, zigzag
from compzoo.errors import BitstreamError, UsageError

SCALE_MIN, SCALE_MAX, SCALE_LEVELS = 0.11, 256.0, 64
_TAIL_SIGMAS = 6.2  # a table spans ±6.2 σ: the Gaussian mass outside is ~6e-10
_LIKELIHOOD_FLOOR = 1e-9


def scale_ladder() -> np.ndarray:
  return np.exp(np.linspace(np.log(SCALE_MIN), np.log(SCALE_MAX), SCALE_LEVELS)).astype(np.float32)


def gaussian_bits(values, means, scales) -> jax.Array:
  """Differentiable bits of ``values`` (integers, or noisy ones while training) under N(means, scales)
  discretised to unit bins; scales below the ladder's smallest are raised to it."""
  scales = jnp.maximum(scales, SCALE_MIN)
  centred = jnp.abs(values - means)  # the lower tail, where Φ is accurate
  upper = jax.scipy.special.ndtr((0.5 - centred) / scales)
  lower = jax.scipy.special.ndtr((-0.5 - centred) / scales)
  return -jnp.log2(jnp.maximum(upper - lower, _LIKELIHOOD_FLOOR))


def scale_indexes(scales):
  """Index of the smallest ladder scale >= each σ (the last one for larger σ), int32, compared in float32: NumPy
  in, NumPy out (the patch codecs, on the host); anything else through jax.numpy, jit-friendly (hyperpriors)."""
  xp = np if isinstance(scales, (np.ndarray, np.generic)) else jnp
  ladder = xp.asarray(scale_ladder())
  index = xp.sum(xp.asarray(scales, xp.float32)[..., None] > ladder[:-1], axis=-1)
  return index.astype(xp.int32)


@dataclasses.dataclass(frozen=True)
class GaussianTables:
  """``freqs[k]`` codes q in ``[-radii[k], radii[k]]`` (``folded``: ``[0, radii[k]]``) plus a final escape, for
  ladder scale k."""

  radii: np.ndarray  # (K,) int64
  freqs: tuple[np.ndarray, ...]  # K rows of integer frequencies summing to 2**24
  folded: bool = False

  @classmethod
  def build(cls, folded: bool = False) -> "GaussianTables":
    radii, freqs = [], []
    for scale in scale_ladder().astype(np.float64):
      radius = max(1, math.ceil(_TAIL_SIGMAS * scale))
      edges = (np.arange(-radius, radius + 2) - 0.5) / scale
      pmf = np.diff(special.ndtr(edges))
      if folded:
        pmf = np.concatenate([pmf[radius:radius + 1], 2.0 * pmf[radius + 1:]])
      escape = max(1.0 - pmf.sum(), 1e-9)
      radii.append(radius)
      freqs.append(quantize_pmf(np.append(pmf, escape)[None])[0])
    return cls(np.asarray(radii, np.int64), tuple(freqs), folded)

  def to_arrays(self) -> dict:
    return {"radii": np.asarray(self.radii, np.int64), "freqs": [np.asarray(f, np.float32) for f in self.freqs]}

  @classmethod
  def from_arrays(cls, arrays, folded: bool = False) -> "GaussianTables":
    """Validates shipped tables: one row per ladder scale, 2r + 2 (folded: r + 2) integers >= 1 summing to 2**24."""
    widths = (lambda radii: radii + 2) if folded else (lambda radii: 2 * radii + 2)
    return cls(*ragged_tables(arrays, "radii", SCALE_LEVELS, "gaussian", widths=widths), folded)

  def _low(self, radius):
    return 0 if self.folded else -radius

  def min_bits_per_symbol(self) -> float:
    return float(min(PRECISION - np.log2(f.max()) for f in self.freqs))

  def bit_costs(self, largest: int) -> np.ndarray:
    """(ladder scales, 2·largest + 1) bits of q in [-largest, largest] under each table (an escape's cost
    estimated): what an encoder weighs choices with, not what a decoder needs."""
    q = np.arange(-largest, largest + 1)
    costs = np.empty((SCALE_LEVELS, q.size))
    for k, (radius, freq) in enumerate(zip(self.radii, self.freqs)):
      bits = PRECISION - np.log2(freq)
      inside = (q >= self._low(radius)) & (q <= radius)
      escaped = bits[-1] + 6 + 2 * np.log2(1 + np.abs(q))
      costs[k] = np.where(inside, bits[np.clip(q - self._low(radius), 0, freq.size - 1)], escaped)
    return costs

  def encode(self, symbols, indexes) -> bytes:
    """Integer ``symbols`` (q = round(y - μ)) under the tables ``indexes`` picks, table by table."""
    symbols, indexes = _flat(symbols, indexes)
    if self.folded and symbols.size and symbols.min() < 0:
      raise UsageError("folded gaussian coding takes non-negative symbols")
    encoder, escaped = Encoder(), []
    for k in np.unique(indexes):
      chosen = symbols[indexes == k]
      radius, low = self.radii[k], self._low(self.radii[k])
      outside = (chosen > radius) | (chosen < low)
      encoder.put_table(np.where(outside, radius - low + 1, chosen - low), self.freqs[k])
      escaped.append(chosen[outside])
    escaped = np.concatenate(escaped) if escaped else np.zeros(0, np.int64)
    _put_escapes(encoder, escaped if self.folded else zigzag(escaped))
    return encoder.finish()

  def decode(self, data: bytes, indexes) -> np.ndarray:
    indexes = np.asarray(indexes)
    flat = indexes.reshape(-1)
    if flat.size and (flat.min() < 0 or flat.max() >= SCALE_LEVELS):
      raise UsageError(f"scale indexes must lie in [0, {SCALE_LEVELS})")
    decoder = Decoder(data)
    symbols = np.zeros(flat.size, np.int64)
    escape_at = []
    for k in np.unique(flat):
      where = np.nonzero(flat == k)[0]
      radius, low = self.radii[k], self._low(self.radii[k])
      index = decoder.get_table(where.size, self.freqs[k]).astype(np.int64)
      symbols[where] = index + low
      escape_at.append(where[index == radius - low + 1])
    escape_at = np.concatenate(escape_at) if escape_at else np.zeros(0, np.int64)
    escapes = _get_escapes(decoder, escape_at.size)
    symbols[escape_at] = escapes if self.folded else unzigzag(escapes)
    if np.abs(symbols).max(initial=0) > np.iinfo(np.int32).max:
      raise BitstreamError("gaussian stream decodes to values outside int32")
    return symbols.astype(np.int32).reshape(indexes.shape)


def _flat(symbols, indexes):
  symbols, indexes = np.asarray(symbols), np.asarray(indexes)
  if symbols.shape != indexes.shape:
    raise UsageError(f"symbols {symbols.shape} and scale indexes {indexes.shape} differ in shape")
  if not np.issubdtype(symbols.dtype, np.integer):
    raise UsageError(f"gaussian coding takes integer symbols, got {symbols.dtype}")
  return symbols.reshape(-1).astype(np.int64), indexes.reshape(-1)


def _put_escapes(encoder: Encoder, values) -> None:
  """Non-negative values below 2**32: their bit lengths (0-32), then, length by length, the bits under the
  leading one. An escape just past a table costs about 10 bits, not 32."""
  lengths = np.array([int(v).bit_length() for v in values], np.int64)
  encoder.put_uniform(lengths, 33)
  for n in range(2, 33):
    chosen = values[lengths == n]
    encoder.put_uniform(chosen - (1 << (n - 1)), 1 << (n - 1))


def _get_escapes(decoder: Decoder, count: int) -> np.ndarray:
  lengths = decoder.get_uniform(count, 33)
  values = np.minimum(lengths, 1).astype(np.int64)  # lengths 0 and 1 are the values 0 and 1
  for n in range(2, 33):
    where = lengths == n
    values[where] = decoder.get_uniform(int(where.sum()), 1 << (n - 1)) + (1 << (n - 1))
  return values
