"""Discretized logistic mixture over L levels, with L3C's linear R -> G -> B channel coupling.

Mentzer et al., "Practical Full Resolution Learned Lossless Image Compression" (CVPR 2019), after
PixelCNN++ (Salimans et al. 2017). Symbol s in [0, L) sits at value v = 2s/(L-1) - 1 in [-1, 1]; its bin is
[v - h, v + h] with h = 1/(L-1), the outermost bins open to +-infinity. Each channel c has its own K weights,
means and log-scales. With ``rgb_coupling`` (C = 3), the means of G and B shift by already-coded channels:

    mu_G += alpha * v_R        mu_B += beta * v_R + gamma * v_G        (alpha, beta, gamma = tanh(raw))

``cond`` has shape ``symbols.shape + (P,)``: per channel [logits K | means K | log-scales K] and, when
coupled, [raw coefficient K] where channel 0 holds alpha, channel 1 beta and channel 2 gamma.
Coding goes channel by channel (all R, then all G, then all B), so a decoder knows v_R before it needs it.

Coding tables are integer frequencies built on the device (``device_tables.frequencies``), in the jitted
function that evaluates the mixture. Over many levels (256: pixels) a symbol's table covers only a window of
``WINDOW`` levels around the mixture's mean plus an escape entry that holds the rest of the mass; a symbol
outside its window is coded as the escape, then as its block of ``BLOCK`` levels (a table of the blocks' mass
outside the window), then as its level in the block (the window's levels get no mass). So
P(escape) P(block | escape) P(s | block, escape) = P(s): the window costs no bits, and no symbol needs more
than 33 + 11 + 33 CDF evaluations instead of 255. The window's place
is computed in the same compiled function on both sides, from the same inputs, so both sides agree on it.
A mixture evaluated at 33 edges instead of 255 is most of what made L3C's coding fast (issue #19).
"""

from __future__ import annotations

import collections
import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from compzoo.entropy.base import ConditionalModel, chunk_size, pad_rows
from compzoo.entropy.coder import Decoder, Encoder
from compzoo.entropy.device_tables import frequencies
from compzoo.errors import UsageError
from compzoo.ops import log_logistic_bin, nats_to_bits

_OPEN = 1e4  # stands for +-infinity at the outer bin edges, finite so gradients stay finite.
WINDOW = 32  # levels a coding table covers when the alphabet is larger than 2 * WINDOW
AHEAD = 4  # chunks of tables dispatched ahead of the one being coded
BLOCK = 32  # an escaped symbol is coded as its block of BLOCK levels, then its level within the block


@dataclasses.dataclass(frozen=True)
class DiscretizedLogisticMixture(ConditionalModel):
  levels: int = 256
  components: int = 10
  rgb_coupling: bool = False
  min_log_scale: float = -7.0
  # Log-scales are clipped above too: a scale of e^7 is already flat over [-1, 1], and exp(-log_scale)
  # of an untrained network's large outputs would otherwise underflow to 0 and make log p = log 0.
  max_log_scale: float = 7.0

  @property
  def num_params(self) -> int:
    return (4 if self.rgb_coupling else 3) * self.components

  def cost_per_row(self) -> int:
    return self.components * (self.table_size + 1) + 5 * self.components

  @property
  def windowed(self) -> bool:
    return self.levels > 2 * WINDOW

  @property
  def table_size(self) -> int:
    """Entries of a coding table: the window and its escape, or every level."""
    return WINDOW + 1 if self.windowed else self.levels

  def values(self, symbols):
    return jnp.asarray(symbols, jnp.float32) * (2.0 / (self.levels - 1)) - 1.0

  def bits(self, symbols, cond=None) -> jax.Array:
    symbols = jnp.asarray(symbols, jnp.float32)
    k = self.components
    logits, means, log_scales = cond[..., :k], cond[..., k:2 * k], cond[..., 2 * k:3 * k]
    v = self.values(symbols)
    if self.rgb_coupling:
      self._check_rgb(symbols.shape)
      coef = jnp.tanh(cond[..., 3 * k:4 * k])
      r, g = v[..., 0:1], v[..., 1:2]
      shift = jnp.stack([jnp.zeros_like(means[..., 0, :]), coef[..., 0, :] * r,
                         coef[..., 1, :] * r + coef[..., 2, :] * g], axis=-2)
      means = means + shift
    inv_scale = jnp.exp(-jnp.clip(log_scales, self.min_log_scale, self.max_log_scale))
    h = 1.0 / (self.levels - 1)
    lower = jnp.where(symbols <= 0, -_OPEN, v - h)[..., None]
    upper = jnp.where(symbols >= self.levels - 1, _OPEN, v + h)[..., None]
    log_bin = log_logistic_bin((lower - means) * inv_scale, (upper - means) * inv_scale)
    log_p = jax.nn.logsumexp(jax.nn.log_softmax(logits, axis=-1) + log_bin, axis=-1)
    return -nats_to_bits(log_p)

  def probabilities(self, rows, context=None) -> jax.Array:
    """Uncoupled rows (n, 3K) -> float probabilities (n, L) (coupled channels: ``channel_probabilities``)."""
    del context
    return self.channel_probabilities(rows[:, None, :3 * self.components], None, 0)

  # Coding. Rows are grouped (N, C, P): C = 3 coupled channels coded one after the other (all R, then all G,
  # then all B), or C = 1 for independent symbols. ``known`` (N, C) holds symbols already coded; a channel's
  # tables read only the channels before it, so the encoder (which knows every channel) and the decoder
  # (which knows those) feed the compiled functions the same values.

  def channel_components(self, rows, known, channel: int):
    """-> mixture weights, means (coupling applied) and inverse scales (n, K) of ``channel``."""
    k = self.components
    own = rows[:, channel]
    logits, means, log_scales = own[:, :k], own[:, k:2 * k], own[:, 2 * k:3 * k]
    if self.rgb_coupling and channel > 0:
      v = self.values(known[:, :channel])
      coef = [jnp.tanh(rows[:, i, 3 * k:4 * k]) for i in range(3)]  # alpha, beta, gamma
      means = means + (coef[0] * v[:, 0:1] if channel == 1 else coef[1] * v[:, 0:1] + coef[2] * v[:, 1:2])
    inv_scale = jnp.exp(-jnp.clip(log_scales, self.min_log_scale, self.max_log_scale))
    return jax.nn.softmax(logits, axis=-1), means, inv_scale

  @staticmethod
  def _cdf(edges, weights, means, inv_scale):
    """The mixture's CDF at edges (n, E) -> (n, E); the CDFs are mixed before any difference is taken.
    One (n, E) term per component, summed in order: XLA fuses it into one loop, 3x faster on the CPU than
    a sum over an (n, K, E) axis."""
    cdf = jnp.zeros_like(edges)
    for k in range(weights.shape[1]):
      cdf = cdf + weights[:, k:k + 1] * jax.nn.sigmoid((edges - means[:, k:k + 1]) * inv_scale[:, k:k + 1])
    return cdf

  def channel_probabilities(self, rows, known, channel: int):
    """Float probabilities over every level (n, L) of ``channel``."""
    weights, means, inv_scale = self.channel_components(rows, known, channel)
    h = 1.0 / (self.levels - 1)
    inner = jnp.broadcast_to(jnp.linspace(-1.0 + h, 1.0 - h, self.levels - 1), (rows.shape[0], self.levels - 1))
    mixed = self._cdf(inner, weights, means, inv_scale)  # (n, L - 1)
    ones = jnp.ones_like(mixed[:, :1])
    return jnp.maximum(jnp.diff(jnp.concatenate([0 * ones, mixed, ones], axis=-1), axis=-1), 0.0)

  def _cdf_at(self, boundaries, weights, means, inv_scale):
    """The mixture's CDF at level boundaries (n, E) ints: boundary x lies between levels x - 1 and x, and the
    outermost bins are open (0 at boundary 0, 1 at boundary L)."""
    edges = boundaries.astype(jnp.float32) * (2.0 / (self.levels - 1)) - 1.0 - 1.0 / (self.levels - 1)
    cdf = self._cdf(edges, weights, means, inv_scale)
    return jnp.where(boundaries <= 0, 0.0, jnp.where(boundaries >= self.levels, 1.0, cdf))

  def window_frequencies(self, rows, known, channel: int):
    """-> (first level of each row's window (n,) int32, integer tables (n, WINDOW + 1), escape last)."""
    weights, means, inv_scale = self.channel_components(rows, known, channel)
    center = jnp.round((jnp.sum(weights * means, axis=-1) + 1.0) * ((self.levels - 1) / 2.0))
    first = jnp.clip(center - WINDOW // 2, 0, self.levels - WINDOW).astype(jnp.int32)
    cdf = self._cdf_at(first[:, None] + jnp.arange(WINDOW + 1)[None, :], weights, means, inv_scale)
    inside = jnp.maximum(jnp.diff(cdf, axis=-1), 0.0)
    escape = jnp.maximum(cdf[:, :1] + (1.0 - cdf[:, -1:]), 0.0)
    return first, frequencies(jnp.concatenate([inside, escape], axis=-1))

  def block_frequencies(self, rows, known, channel: int, first):
    """Escaped rows: integer tables over the blocks of ``BLOCK`` levels, each holding its mass outside the
    row's window (P(block | escape))."""
    weights, means, inv_scale = self.channel_components(rows, known, channel)
    blocks = -(-self.levels // BLOCK)
    bounds = jnp.minimum(jnp.arange(blocks + 1) * BLOCK, self.levels)
    low, high = first[:, None], first[:, None] + WINDOW
    points = jnp.concatenate([jnp.broadcast_to(bounds, (rows.shape[0], blocks + 1)), low, high], axis=1)
    cdf = self._cdf_at(points, weights, means, inv_scale)
    at_bounds, at_low, at_high = cdf[:, :blocks + 1], cdf[:, -2:-1], cdf[:, -1:]
    block_low, block_high = bounds[None, :-1], bounds[None, 1:]
    # The part of each block inside the window: from max(block start, window start) to min(ends).
    overlap = (jnp.where(block_high <= high, at_bounds[:, 1:], at_high)
               - jnp.where(block_low >= low, at_bounds[:, :-1], at_low))
    overlap = jnp.where(jnp.minimum(block_high, high) > jnp.maximum(block_low, low), jnp.maximum(overlap, 0.0), 0.0)
    return frequencies(jnp.maximum(jnp.diff(at_bounds, axis=-1) - overlap, 0.0))

  def level_frequencies(self, rows, known, channel: int, first, block):
    """Escaped rows: integer tables over the ``BLOCK`` levels of each row's block, its window's levels (and
    levels past the last) holding no mass (P(s | block, escape))."""
    weights, means, inv_scale = self.channel_components(rows, known, channel)
    levels = block[:, None] * BLOCK + jnp.arange(BLOCK)[None, :]
    bounds = jnp.minimum(block[:, None] * BLOCK + jnp.arange(BLOCK + 1)[None, :], self.levels)
    pmf = jnp.maximum(jnp.diff(self._cdf_at(bounds, weights, means, inv_scale), axis=-1), 0.0)
    impossible = ((levels >= first[:, None]) & (levels < first[:, None] + WINDOW)) | (levels >= self.levels)
    return frequencies(jnp.where(impossible, 0.0, pmf))

  def full_frequencies(self, rows, known, channel: int):
    """Integer tables over every level (alphabets of at most 2 * WINDOW levels)."""
    return frequencies(self.channel_probabilities(rows, known, channel))

  def encode_to(self, encoder: Encoder, symbols, cond) -> None:
    symbols = np.asarray(symbols)
    self._checked(symbols)
    rows = self._grouped(symbols.shape, cond)
    flat = symbols.reshape(rows.shape[:2]).astype(np.int32)
    known = flat if self.rgb_coupling else None
    for channel in range(rows.shape[1]):
      s = flat[:, channel]
      escaped, firsts = [], []
      for piece, tables in self._dispatched(rows, known, channel):
        if not self.windowed:
          encoder.put_frequencies(s[piece], tables)
          continue
        first, freq = tables
        index = s[piece] - first
        outside = (index < 0) | (index >= WINDOW)
        encoder.put_frequencies(np.where(outside, WINDOW, index), freq)
        escaped.append(piece.start + np.flatnonzero(outside))
        firsts.append(first[outside])
      if escaped:  # after the channel's window symbols: the blocks of its escaped ones, then their levels
        where, firsts = np.concatenate(escaped), np.concatenate(firsts)
        blocks = s[where] // BLOCK
        for piece, freq in self._escaped(rows, known, channel, where, firsts):
          encoder.put_frequencies(blocks[piece], freq)
        for piece, freq in self._escaped(rows, known, channel, where, firsts, blocks):
          encoder.put_frequencies(s[where[piece]] - BLOCK * blocks[piece], freq)

  def decode_from(self, decoder: Decoder, shape, cond) -> np.ndarray:
    shape = tuple(shape)
    rows = self._grouped(shape, cond)
    flat = np.zeros(rows.shape[:2], np.int32)
    known = flat if self.rgb_coupling else None
    for channel in range(rows.shape[1]):
      escaped, firsts = [], []
      for piece, tables in self._dispatched(rows, known, channel):
        if not self.windowed:
          flat[piece, channel] = decoder.get_frequencies(tables)
          continue
        first, freq = tables
        index = decoder.get_frequencies(freq)
        flat[piece, channel] = first + index
        outside = index == WINDOW
        escaped.append(piece.start + np.flatnonzero(outside))
        firsts.append(first[outside])
      if escaped:
        where, firsts = np.concatenate(escaped), np.concatenate(firsts)
        blocks = np.zeros(len(where), np.int32)
        for piece, freq in self._escaped(rows, known, channel, where, firsts):
          blocks[piece] = decoder.get_frequencies(freq)
        for piece, freq in self._escaped(rows, known, channel, where, firsts, blocks):
          flat[where[piece], channel] = BLOCK * blocks[piece] + decoder.get_frequencies(freq)
    return flat.reshape(shape)

  def _grouped(self, shape, cond) -> np.ndarray:
    """cond -> float32 rows (N, C, P), without a copy when it is float32 already."""
    if self.rgb_coupling:
      self._check_rgb(shape)
    rows = self._rows(shape, cond)
    return rows.reshape(-1, 3 if self.rgb_coupling else 1, self.num_params)

  def _dispatched(self, rows, known, channel):
    """Yields (slice, tables on the device) for every chunk of rows (see ``_ahead``)."""
    size = chunk_size(rows.shape[0], self.cost_per_row())
    compute = _window_frequencies if self.windowed else _full_frequencies
    return _ahead(rows.shape[0], size, lambda piece: compute(
        self, pad_rows(rows[piece], size), _padded(known, piece, size), channel))

  def _escaped(self, rows, known, channel, where, firsts, blocks=None):
    """Yields (slice of ``where``, integer tables) for the escaped rows ``where``, in chunks: over blocks,
    or, given each row's block, over the levels of that block."""
    size = chunk_size(len(where), self.components * (BLOCK + 2) + 5 * self.components)

    def dispatch(piece):
      picked = where[piece]
      args = (self, pad_rows(rows[picked], size), _padded(known, picked, size), channel, pad_rows(firsts[piece], size))
      return (_block_frequencies(*args) if blocks is None else
              _level_frequencies(*args, pad_rows(blocks[piece].astype(np.int32), size)))

    return _ahead(len(where), size, dispatch)

  def _check_rgb(self, shape):
    if not shape or shape[-1] != 3:
      raise UsageError(f"rgb_coupling needs symbols with 3 channels last, got shape {tuple(shape)}")


@functools.partial(jax.jit, static_argnums=(0, 3))
def _window_frequencies(model, rows, known, channel):
  return model.window_frequencies(rows, known, channel)


@functools.partial(jax.jit, static_argnums=(0, 3))
def _full_frequencies(model, rows, known, channel):
  return model.full_frequencies(rows, known, channel)


@functools.partial(jax.jit, static_argnums=(0, 3))
def _block_frequencies(model, rows, known, channel, first):
  return model.block_frequencies(rows, known, channel, first)


@functools.partial(jax.jit, static_argnums=(0, 3))
def _level_frequencies(model, rows, known, channel, first, block):
  return model.level_frequencies(rows, known, channel, first, block)


def _ahead(total: int, size: int, dispatch):
  """Yields (slice, fetched tables) for chunks of ``size`` rows, keeping ``AHEAD`` chunks dispatched before the
  one in use: the device computes the next tables while the host range-codes (JAX dispatches asynchronously),
  and no more than AHEAD chunks of inputs and tables are held at once."""
  pieces = [slice(start, min(start + size, total)) for start in range(0, total, size)]
  pending = collections.deque((piece, dispatch(piece)) for piece in pieces[:AHEAD])
  for piece in pieces[AHEAD:] + [None] * min(AHEAD, len(pieces)):
    ready, tables = pending.popleft()
    if piece is not None:
      pending.append((piece, dispatch(piece)))
    yield ready, jax.tree.map(lambda table: _fetch(table, ready), tables)


def _padded(known, piece, size):
  return None if known is None else pad_rows(known[piece], size)


def _fetch(table, piece) -> np.ndarray:
  return np.asarray(table)[: piece.stop - piece.start]
