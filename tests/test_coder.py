import jax.numpy as jnp
import numpy as np
import pytest

from compzoo.entropy import device_tables
from compzoo.entropy.coder import PRECISION, Decoder, Encoder, quantize_pmf
from compzoo.errors import BitstreamError, UsageError


def test_quantize_pmf_sums_and_floor(rng):
  pmf = rng.dirichlet(np.full(300, 0.05), size=500)
  freq = quantize_pmf(pmf)
  assert freq.dtype == np.float32 and (freq == np.floor(freq)).all()  # integers, exact in float32
  assert (freq.sum(axis=1, dtype=np.int64) == 1 << PRECISION).all()
  assert freq.min() >= 1
  # proportional: large probabilities are kept to about 1e-6
  big = pmf > 1e-3
  assert np.allclose(freq[big] / (1 << PRECISION), pmf[big], rtol=1e-3, atol=2e-5)


def test_quantize_pmf_degenerate_rows_become_uniform():
  rows = np.array([[0.0, 0.0, 0.0], [np.nan, 1.0, 0.0], [np.inf, 1.0, 1.0], [-1.0, 2.0, 2.0]])
  freq = quantize_pmf(rows)
  assert (freq.sum(axis=1, dtype=np.int64) == 1 << PRECISION).all()
  assert (freq.max(axis=1) - freq.min(axis=1) <= 1e-5 * freq.max(axis=1)).all()


@pytest.mark.parametrize("levels", [2, 3, 255, 4097, 1 << 16])
def test_quantize_pmf_flat_and_peaked_rows_never_overflow(levels):
  flat = np.full((1, levels), 1.0 / levels)
  peaked = np.full((1, levels), 1e-12)
  peaked[0, levels // 2] = 1.0
  for rows in (flat, peaked, np.vstack([flat, peaked])):
    freq = quantize_pmf(rows)
    assert (freq.sum(axis=1, dtype=np.int64) == 1 << PRECISION).all() and freq.min() >= 1


def test_device_frequencies_keep_the_host_contract(rng):
  """Tables built on the device: integers >= 1 summing to exactly 2**24, bad entries counted as no mass, and
  within a few units of the host's tables for the same rows (the leftover goes to the last entry there)."""
  pmf = rng.dirichlet(np.full(33, 0.1), size=500).astype(np.float32)
  degenerate = np.array([[0.0] * 33, [np.nan] + [1.0] * 32, [np.inf] + [1.0] * 32, [-1.0] + [2.0] * 32], np.float32)
  freq = np.asarray(device_tables.frequencies(jnp.asarray(np.vstack([pmf, degenerate]))))
  assert freq.dtype == np.float32 and (freq == np.floor(freq)).all() and freq.min() >= 1
  assert (freq.sum(axis=1, dtype=np.int64) == 1 << PRECISION).all()
  assert freq[-4, -1] == (1 << PRECISION) - 32  # no mass at all: everything on the last entry
  assert (freq[-3:, 0] == 1).all() and (np.ptp(freq[-3:, 1:-1], axis=1) == 0).all()
  host = quantize_pmf(pmf)
  compared = np.ones_like(host, bool)
  compared[np.arange(len(host)), np.argmax(host, axis=1)] = False
  compared[:, -1] = False
  assert (np.abs(freq[:500][compared] - host[compared]) <= 2 + 1e-6 * host[compared]).all()


def test_quantize_pmf_is_deterministic(rng):
  pmf = rng.random((64, 17)).astype(np.float32)
  a = quantize_pmf(pmf / pmf.sum(axis=1, keepdims=True))
  b = quantize_pmf(pmf / pmf.sum(axis=1, keepdims=True))
  np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("size", [2, 3, 25, 256, 70_000, 1 << 24, (1 << 24) + 3, 1 << 32])
def test_uniform_values_round_trip(rng, size):
  values = rng.integers(0, size, 1000, dtype=np.int64)
  values[:2] = [0, size - 1]
  encoder = Encoder()
  encoder.put_uniform(values, size)
  data = encoder.finish()
  np.testing.assert_array_equal(Decoder(data).get_uniform(values.size, size), values)


def test_non_power_of_two_alphabet_costs_its_log():
  encoder = Encoder()
  encoder.put_uniform(np.arange(100_000) % 25, 25)
  bits = 8 * len(encoder.finish())
  assert bits < 100_000 * np.log2(25) * 1.001 + 64


def test_mixed_stream_round_trip(rng):
  pmf = rng.dirichlet(np.ones(7), size=500)
  symbols = rng.integers(0, 7, 500)
  table = quantize_pmf(np.array([[0.5, 0.25, 0.25]]))[0]
  fixed = rng.integers(0, 3, 300)
  encoder = Encoder()
  encoder.put(symbols, pmf)
  encoder.put_table(fixed, table)
  encoder.put_uniform(np.array([12345]), 1 << 20)
  decoder = Decoder(encoder.finish())
  np.testing.assert_array_equal(decoder.get(pmf), symbols)
  np.testing.assert_array_equal(decoder.get_table(300, table), fixed)
  assert decoder.get_uniform(1, 1 << 20)[0] == 12345


def test_encoder_rejects_out_of_range_symbols():
  with pytest.raises(UsageError):
    Encoder().put(np.array([3]), np.ones((1, 3)))


def test_decoder_errors_are_bitstream_errors(rng):
  with pytest.raises(BitstreamError):
    Decoder(b"abc")
  pmf = rng.dirichlet(np.full(256, 0.1), size=2000)
  symbols = np.array([rng.choice(256, p=p) for p in pmf])
  encoder = Encoder()
  encoder.put(symbols, pmf)
  data = bytearray(encoder.finish())
  for trial in range(200):
    damaged = bytearray(data)
    damaged[rng.integers(len(damaged))] ^= 0xFF
    try:
      decoded = Decoder(bytes(damaged)).get(pmf)
    except BitstreamError:
      continue
    assert decoded.shape == symbols.shape  # garbage is possible here; the container's CRC catches it
