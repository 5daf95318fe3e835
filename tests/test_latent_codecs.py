"""The latent-codec layer's own pieces (compzoo/entropy/tables.py, gaussian.py, bitstream.expect_streams):
indexed Gaussian coding within a few bytes of its bits and exact with escapes, shipped tables validated and
never rebuilt, the one stream-count check, and learned tables whose bits match their integer tables."""

import jax.numpy as jnp
import numpy as np
import pytest

from compzoo import bitstream
from compzoo.entropy import Decoder, Encoder, GaussianTables, LearnedTable
from compzoo.entropy.gaussian import SCALE_LEVELS, gaussian_bits, scale_indexes, scale_ladder
from compzoo.errors import BitstreamError, UsageError

TABLES = GaussianTables.build()


def test_gaussian_bytes_match_the_bits_of_the_table_scales_and_decode_exactly(rng):
  indexes = rng.integers(0, 40, 60_000)
  scales = scale_ladder()[indexes]
  symbols = np.round(rng.normal(0.0, scales)).astype(np.int32)
  symbols[:5] = [10**6, -10**6, 2**31 - 1, -(2**31 - 1), 0]  # escapes, far outside every table
  data = TABLES.encode(symbols, indexes)
  np.testing.assert_array_equal(TABLES.decode(data, indexes), symbols)
  bits = float(jnp.sum(gaussian_bits(symbols[5:].astype(np.float32), 0.0, scales[5:])))
  assert 8 * len(data) < 1.01 * bits + 5 * 34 + 64
  assert 8 * len(data) >= symbols.size * TABLES.min_bits_per_symbol()


def test_scale_indexes_pick_the_smallest_table_scale_not_below_sigma():
  ladder = scale_ladder()
  sigma = np.array([0.0, 0.11, 0.2, 1.0, 255.0, 1e6], np.float32)
  index = np.asarray(scale_indexes(sigma))
  assert index.min() >= 0 and index.max() == SCALE_LEVELS - 1
  inside = sigma <= ladder[-1]
  assert (ladder[index[inside]] >= sigma[inside]).all()
  assert (index[inside] == 0).sum() == 2 or (ladder[np.maximum(index[inside] - 1, 0)] < sigma[inside]).all()


def test_shipped_tables_are_validated_not_rebuilt():
  arrays = TABLES.to_arrays()
  assert GaussianTables.from_arrays(arrays).radii.tolist() == TABLES.radii.tolist()
  arrays["freqs"][3] = arrays["freqs"][3] + 1  # no longer sums to 2**24
  with pytest.raises(UsageError, match="do not fit"):
    GaussianTables.from_arrays(arrays)
  table = LearnedTable(4)
  good = table.integer_table(jnp.zeros((3, 4)))
  assert table.checked({"code": good}, "code", 3, "toy").shape == (3, 4)
  with pytest.raises(UsageError, match="has no 'code' coding table"):
    table.checked({}, "code", 3, "toy")
  with pytest.raises(UsageError, match="shape"):
    table.checked({"code": good[:2]}, "code", 3, "toy")
  with pytest.raises(UsageError, match="integer frequencies"):
    table.checked({"code": good * 0.5}, "code", 3, "toy")


def test_learned_table_bits_match_its_coded_bytes(rng):
  table = LearnedTable(5)
  logits = jnp.asarray(rng.normal(size=(7, 5)).astype(np.float32) / 5)  # stored ÷ TABLE_SCALE
  rows = rng.integers(0, 7, 50_000)
  probabilities = np.exp(np.asarray(table.logits(logits)))
  probabilities /= probabilities.sum(axis=1, keepdims=True)
  symbols = np.array([rng.choice(5, p=probabilities[r]) for r in rows[:2000]] * 25)
  bits = float(table.bits(logits, symbols, rows).sum())
  encoder = Encoder()
  frequencies = table.integer_table(logits)
  LearnedTable.encode(encoder, symbols, frequencies, rows)
  data = encoder.finish()
  assert abs(8 * len(data) - bits) < 0.01 * bits + 64
  np.testing.assert_array_equal(LearnedTable.decode(Decoder(data), frequencies, rows), symbols)
  assert 8 * len(data) >= LearnedTable.floor_bits(frequencies)[rows].sum() - 64


def test_one_stream_check_with_one_wording():
  bitstream.expect_streams([b"1234", b"x"], 2, "toy", {0: 4})
  with pytest.raises(BitstreamError, match="toy files hold 2 streams, stream 0 of 4 bytes; this one has 1"):
    bitstream.expect_streams([b"1234"], 2, "toy", {0: 4})
  with pytest.raises(BitstreamError, match="this one has 2 of 3, 1 bytes"):
    bitstream.expect_streams([b"123", b"x"], 2, "toy", {0: 4})
