"""Learned tables: categoricals whose logits are parameters, coded with integer tables that exports ship.

Every method that codes a small alphabet with learned, input-independent probabilities goes through here:
cpm's importance counts and its factorized ablation, GC's and DPLC's code symbols, SC's label maps. A
``LearnedTable`` turns a logits parameter (any shape ending in the alphabet) into
  * training bits: -log2 softmax(grid logits)[row, symbol], differentiable in the logits;
  * the integer table exports ship (``integer_table``), exact on any machine (grid logits -> integer
    lookup -> ``quantize_pmf``), and the check a decoder runs on a shipped one (``checked``): a table is
    never rebuilt by a receiver, and a missing or malformed one is a one-line UsageError;
  * ``floor_bits``: each row's cheapest symbol, the lower bound a decoder uses to refuse a file that
    claims a huge image in a few bytes.
Parameters keep their names in each model (so shipped weights and their ids stay as they are); ``scale``
is what the stored logits are multiplied by (``TABLE_SCALE``; DPLC's were trained unscaled).

``CausalContextTable`` is a learned table whose row is picked by already-coded neighbours of a 2D map
(cpm's importance counts: west and north; label maps: west, north and north-east). Every neighbour of a
position lies on an earlier wavefront t = slope·y + x, so the decoder decodes a whole wavefront at once.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from compzoo.entropy.categorical import TABLE_SCALE, grid_logits, pmf_from_grid_logits
from compzoo.entropy.coder import PRECISION, Decoder, Encoder, quantize_pmf, valid_frequencies
from compzoo.errors import BitstreamError, UsageError
from compzoo.ops import nats_to_bits


@dataclasses.dataclass(frozen=True)
class LearnedTable:
  """A categorical over ``levels`` symbols per row of a logits parameter (rows: all leading axes)."""

  levels: int
  scale: float = TABLE_SCALE

  def logits(self, param) -> jax.Array:
    """The grid logits actually coded, (rows, levels); straight-through, so training sees them."""
    return grid_logits(self.scale * jnp.asarray(param)).reshape(-1, self.levels)

  def bits(self, param, symbols, rows) -> jax.Array:
    """Bits of each symbol under its row (``rows`` broadcasts against ``symbols``)."""
    log_p = jax.nn.log_softmax(self.logits(param), axis=-1)
    symbols = jnp.asarray(symbols, jnp.int32)
    rows = jnp.broadcast_to(jnp.asarray(rows, jnp.int32), symbols.shape)
    return -nats_to_bits(log_p[rows, symbols])

  def integer_table(self, param) -> np.ndarray:
    """(rows, levels) integer frequencies summing to 2**24 per row: what an export ships."""
    return quantize_pmf(pmf_from_grid_logits(np.asarray(self.logits(param))))

  def checked(self, tables, key: str, rows: int, owner: str) -> np.ndarray:
    """The shipped table ``tables[key]``, validated: (rows, levels) integers >= 1 summing to 2**24."""
    table = (tables or {}).get(key)
    if table is None:
      raise UsageError(f"{owner} export has no {key!r} coding table (exports ship them; they are never rebuilt)")
    table = np.asarray(table, np.float32)
    if table.shape != (rows, self.levels):
      raise UsageError(f"{owner} export's {key!r} table has shape {table.shape}, expected {(rows, self.levels)}")
    if not valid_frequencies(table):
      raise UsageError(f"{owner} export's {key!r} table is not {PRECISION}-bit integer frequencies")
    return table

  @staticmethod
  def floor_bits(table: np.ndarray) -> np.ndarray:
    """Per row, the fewest bits any symbol costs under the integer table."""
    return PRECISION - np.log2(np.asarray(table).max(axis=1))

  @staticmethod
  def encode(encoder: Encoder, symbols, table: np.ndarray, rows) -> None:
    """Appends ``symbols`` (flat), each under ``table[rows[i]]``."""
    encoder.put_frequencies(np.asarray(symbols).reshape(-1), table[np.asarray(rows).reshape(-1)])

  @staticmethod
  def decode(decoder: Decoder, table: np.ndarray, rows) -> np.ndarray:
    return decoder.get_frequencies(table[np.asarray(rows).reshape(-1)])


@dataclasses.dataclass(frozen=True)
class CausalContextTable:
  """A learned table over ``levels`` symbols whose row is the (levels + 1)-ary number of the symbol's
  ``neighbours`` ((dy, dx) with dy <= 0, first most significant), ``levels`` standing for 'outside'."""

  levels: int
  neighbours: tuple[tuple[int, int], ...]

  @property
  def table(self) -> LearnedTable:
    return LearnedTable(self.levels)

  @property
  def rows(self) -> int:
    return (self.levels + 1) ** len(self.neighbours)

  @property
  def slope(self) -> int:
    """Wavefronts t = slope·y + x put every neighbour on an earlier front."""
    return 1 + max([dx for dy, dx in self.neighbours if dy < 0] + [0])

  @property
  def margins(self) -> tuple[int, int, int]:
    """'Outside' rows above, columns left and right, that every neighbour of a position needs."""
    return (max(-dy for dy, _ in self.neighbours), max([-dx for _, dx in self.neighbours] + [0]),
            max([dx for _, dx in self.neighbours] + [0]))

  def contexts(self, symbols, xp=jnp):
    """The row of every position of ...×H×W maps (numpy or jax.numpy)."""
    top, left, right = self.margins
    padded = xp.pad(symbols, [(0, 0)] * (symbols.ndim - 2) + [(top, 0), (left, right)], constant_values=self.levels)
    height, width = symbols.shape[-2:]
    context = 0
    for dy, dx in self.neighbours:
      context = context * (self.levels + 1) + padded[..., top + dy:top + dy + height, left + dx:left + dx + width]
    return context

  def bits(self, param, symbols) -> jax.Array:
    """Bits of every position of N×H×W maps, differentiable in ``param``."""
    symbols = jnp.asarray(symbols, jnp.int32)
    return self.table.bits(param, symbols, self.contexts(symbols))

  def encode(self, encoder: Encoder, symbols: np.ndarray, table: np.ndarray) -> None:
    """Appends an H×W map wavefront by wavefront (rows ascending within a front)."""
    symbols = np.asarray(symbols, np.int64)
    if symbols.size and (symbols.min() < 0 or symbols.max() >= self.levels):
      raise UsageError(f"symbols must lie in [0, {self.levels}), got [{symbols.min()}, {symbols.max()}]")
    order = _front_order(symbols.shape, self.slope)
    self.table.encode(encoder, symbols.reshape(-1)[order], table, self.contexts(symbols, np).reshape(-1)[order])

  def decode(self, decoder: Decoder, shape, table: np.ndarray) -> np.ndarray:
    """The H×W map ``encode`` wrote: each wavefront's rows come from fronts already decoded."""
    height, width = shape
    top, left, right = self.margins
    padded = np.full((height + top, width + left + right), self.levels, np.int64)
    for rows, columns in _fronts(height, width, self.slope):
      context = 0
      for dy, dx in self.neighbours:
        context = context * (self.levels + 1) + padded[rows + top + dy, columns + left + dx]
      padded[rows + top, columns + left] = self.table.decode(decoder, table, context)
    decoded = padded[top:, left:left + width]
    if (decoded >= self.levels).any():
      raise BitstreamError("context-coded stream holds a symbol outside its alphabet")
    return decoded.astype(np.int32)

  def min_bits(self, shape, table: np.ndarray) -> float:
    """Every position at its likeliest symbol in its cheapest context."""
    return shape[0] * shape[1] * float(LearnedTable.floor_bits(table).min())


@functools.lru_cache(maxsize=16)
def _fronts(height: int, width: int, slope: int) -> list[tuple[np.ndarray, np.ndarray]]:
  """(rows, columns) of each wavefront t = slope·y + x, rows ascending, in decoding order."""
  fronts = []
  for t in range(slope * (height - 1) + width):
    rows = np.arange(max(0, -(-(t - width + 1) // slope)), min(height - 1, t // slope) + 1)
    if rows.size:
      fronts.append((rows, t - slope * rows))
  return fronts


def _front_order(shape, slope: int) -> np.ndarray:
  fronts = _fronts(*shape, slope)
  if not fronts:
    return np.zeros(0, np.int64)
  return np.concatenate([rows * shape[1] + columns for rows, columns in fronts])
