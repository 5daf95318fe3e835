"""Integer frequency tables and the range coder (constriction) behind every entropy model.

Why the encoder and the decoder agree: a model's float probabilities become integer tables here, with
elementwise IEEE operations (each correctly rounded, so identical on every machine) and exact integer
sums: no float reduction whose order could differ between machines or numpy builds. constriction
then turns each integer table into its own fixed-point model deterministically. So two parties that feed
bit-identical float probabilities get identical bytes and identical symbols. What is left to the caller is
to compute those floats identically, which the models do by running the same compiled function on the
same padded chunk shapes (see ``EntropyModel``); the container's checksums turn any remaining mismatch
into a ``BitstreamError`` instead of a wrong image.
"""

from __future__ import annotations

import numpy as np
import constriction

from compzoo.errors import BitstreamError, UsageError

PRECISION = 24  # bits; constriction's range coder works at 24-bit probability precision.
_TOTAL = 1 << PRECISION
_MAX_LEVELS = 1 << 16  # alphabets beyond this belong in several symbols or the uniform path
_FAMILY = constriction.stream.model.Categorical(perfect=False)
_UNIFORM = constriction.stream.model.Uniform()
_MAX_UNIFORM = 1 << 24  # constriction's Uniform takes sizes below this.
_CHUNK_BITS = 16  # larger ranges are coded in 16-bit pieces.


def quantize_pmf(pmf) -> np.ndarray:
  """Rows of probabilities -> integer frequencies that sum to exactly 2**24 per row, each >= 1.

  The integers are held in float32, which represents every integer up to 2**24 exactly: that lets
  constriction take them without conversion, and its own normalising sum is exact in any order (every
  partial sum is an integer <= 2**24). Rows that are all zero or hold NaN, inf or negatives become
  uniform: a degenerate model then costs bits but never breaks coding.
  """
  pmf = np.asarray(pmf, dtype=np.float32)
  n, levels = pmf.shape
  if levels < 2 or levels > _MAX_LEVELS:
    raise UsageError(f"alphabet size must be in [2, {_MAX_LEVELS}], got {levels}")
  bad = ~np.isfinite(pmf.sum(axis=1)) | (pmf.min(axis=1) < 0)
  if bad.any():
    pmf = np.where(bad[:, None], np.float32(1.0 / levels), pmf)
  raw = np.multiply(pmf, np.float32(_TOTAL))
  np.minimum(raw, np.float32(_TOTAL), out=raw)
  np.floor(raw, out=raw)
  total = raw.sum(axis=1, dtype=np.float64)  # exact: integers far below 2**53, so order cannot matter
  dead = total == 0
  if dead.any():
    raw[dead] = 1.0
    total[dead] = levels
  # Every symbol gets one unit for free; the rest is shared out in proportion, scaled a hair low so the
  # rounded products can never add up to more than is free. The remainder goes to the likeliest symbol.
  scale = ((_TOTAL - levels) / total * (1.0 - 2.0**-20)).astype(np.float32)
  freq = np.multiply(raw, scale[:, None], out=raw)
  np.floor(freq, out=freq)
  freq += np.float32(1.0)
  remainder = _TOTAL - freq.sum(axis=1, dtype=np.float64)
  freq[np.arange(n), np.argmax(freq, axis=1)] += remainder.astype(np.float32)
  return freq


def valid_frequencies(rows) -> bool:
  """Whether ``rows`` (one row, or a 2-D array of them) are what ``quantize_pmf`` makes: at least two
  integers >= 1 per row, summing to exactly 2**24. Shipped tables are checked with it before any use."""
  rows = np.atleast_2d(np.asarray(rows, np.float64))
  return bool(rows.ndim == 2 and rows.shape[-1] >= 2 and rows.min() >= 1 and np.all(rows == np.round(rows))
              and np.all(rows.sum(axis=-1) == _TOTAL))


class Encoder:
  """Appends symbols to one range-coded stream; ``finish()`` returns its bytes."""

  def __init__(self):
    self._coder = constriction.stream.queue.RangeEncoder()

  def put(self, symbols, pmf) -> None:
    """Codes ``symbols[i]`` (ints in [0, L)) under row ``i`` of ``pmf`` (probability rows)."""
    if np.size(symbols):
      self.put_frequencies(symbols, quantize_pmf(pmf))

  def put_frequencies(self, symbols, freq) -> None:
    """Like ``put``, with rows that are already integer frequencies from ``quantize_pmf`` (shipped tables)."""
    symbols = np.ascontiguousarray(symbols, dtype=np.int32).reshape(-1)
    if symbols.size == 0:
      return
    freq = np.asarray(freq, np.float32)
    if freq.shape[0] != symbols.size:
      raise UsageError(f"{symbols.size} symbols but {freq.shape[0]} probability rows")
    if symbols.min() < 0 or symbols.max() >= freq.shape[1]:
      raise UsageError(f"symbols must lie in [0, {freq.shape[1]}), got [{symbols.min()}, {symbols.max()}]")
    self._coder.encode(symbols, _FAMILY, freq)

  def put_table(self, symbols, freq_row) -> None:
    """Codes many symbols under one fixed table (a row from ``quantize_pmf``)."""
    symbols = np.ascontiguousarray(symbols, dtype=np.int32).reshape(-1)
    if symbols.size == 0:
      return
    model = constriction.stream.model.Categorical(np.asarray(freq_row, np.float32), perfect=False)
    self._coder.encode(symbols, model)

  def put_uniform(self, values, size: int) -> None:
    """Codes ints in [0, size) at about log2(size) bits each; size may be up to 2**32."""
    values = np.asarray(values, dtype=np.int64).reshape(-1)
    if values.size == 0 or size <= 1:
      return
    for shift, piece in _pieces(size):
      self._coder.encode(((values >> shift) % piece).astype(np.int32), _UNIFORM,
                         np.full(values.size, piece, np.int32))

  def bits(self) -> int:
    """Bits written so far (whole 32-bit words, plus the coder's pending state): differences between two
    calls attribute a stream's bits to what was coded between them."""
    return int(self._coder.num_bits())

  def finish(self) -> bytes:
    return self._coder.get_compressed().astype("<u4").tobytes()


class Decoder:
  """Reads back, in the same order, what an ``Encoder`` wrote. Errors become ``BitstreamError``."""

  def __init__(self, data: bytes):
    if len(data) % 4:
      raise BitstreamError(f"entropy-coded stream has {len(data)} bytes, not a multiple of 4")
    self._coder = constriction.stream.queue.RangeDecoder(np.frombuffer(data, dtype="<u4").astype(np.uint32))

  def get(self, pmf) -> np.ndarray:
    return self.get_frequencies(quantize_pmf(pmf)) if len(pmf) else np.zeros(0, np.int32)

  def get_frequencies(self, freq) -> np.ndarray:
    """One symbol per row of integer frequencies (from ``quantize_pmf``)."""
    freq = np.asarray(freq, np.float32)
    if freq.shape[0] == 0:
      return np.zeros(0, np.int32)
    return self._guarded(lambda: self._coder.decode(_FAMILY, freq))

  def get_table(self, count: int, freq_row) -> np.ndarray:
    if count == 0:
      return np.zeros(0, np.int32)
    model = constriction.stream.model.Categorical(np.asarray(freq_row, np.float32), perfect=False)
    return self._guarded(lambda: self._coder.decode(model, count))

  def get_uniform(self, count: int, size: int) -> np.ndarray:
    values = np.zeros(count, np.int64)
    if count == 0 or size <= 1:
      return values
    for shift, piece in _pieces(size):
      part = self._guarded(lambda: self._coder.decode(_UNIFORM, np.full(count, piece, np.int32)))
      values += part.astype(np.int64) << shift
    if (values >= size).any():
      raise BitstreamError("entropy-coded stream holds a value out of its range")
    return values

  def _guarded(self, decode):
    try:
      return np.asarray(decode(), dtype=np.int32)
    except (AssertionError, ValueError, KeyError, RuntimeError) as e:  # constriction's ways of failing
      raise BitstreamError(f"entropy-coded stream is invalid: {e}") from None


def _pieces(size: int):
  """Splits an alphabet into (shift, piece) digits, low first: one exact digit when constriction takes
  the size whole (so L levels cost log2(L) bits), else 16-bit digits."""
  if size > 1 << 32:
    raise UsageError(f"uniform alphabet too large: {size}")
  if size < _MAX_UNIFORM:
    return [(0, size)]
  pieces, shift = [], 0
  while (size - 1) >> shift:
    width = min(_CHUNK_BITS, int((size - 1) >> shift).bit_length())
    pieces.append((shift, 1 << width))
    shift += width
  return pieces
