"""Each family: real bytes within 1% (+ a few bytes) of the bit estimate on >= 100k symbols drawn from
the model itself, exact decoding, identical bytes twice, and bits that agree with the coding tables."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from compzoo.entropy import (DiscretizedLogisticMixture, Encoder,
                             EntropyModel, FactorizedDensity, Uniform)
from compzoo.entropy.logistic_mixture import WINDOW
from compzoo.errors import UsageError

N = 100_000


def _gumbel_argmax(rng, logits):
  return np.argmax(logits - np.log(-np.log(rng.random(logits.shape))), axis=-1)


def _sample_mixture(rng, model, cond):
  """Draws symbols from the discretized mixture, channel by channel (so coupling sees earlier channels)."""
  k = model.components
  symbols = np.zeros(cond.shape[:-1], np.int64)
  channels = cond.shape[-2]
  for c in range(channels):
    row = cond[..., c, :]
    comp = _gumbel_argmax(rng, row[..., :k])[..., None]
    mean = np.take_along_axis(row[..., k:2 * k], comp, -1)[..., 0]
    log_scale = np.maximum(np.take_along_axis(row[..., 2 * k:3 * k], comp, -1)[..., 0], model.min_log_scale)
    if model.rgb_coupling and c > 0:
      v = symbols[..., :c] * 2 / (model.levels - 1) - 1
      alpha, beta, gamma = (np.tanh(np.take_along_axis(cond[..., i, 3 * k:], comp, -1)[..., 0]) for i in range(3))
      mean = mean + (alpha * v[..., 0] if c == 1 else beta * v[..., 0] + gamma * v[..., 1])
    u = rng.uniform(1e-6, 1 - 1e-6, mean.shape)
    x = mean + np.exp(log_scale) * np.log(u / (1 - u))
    symbols[..., c] = np.clip(np.round((x + 1) * (model.levels - 1) / 2), 0, model.levels - 1)
  return symbols


def _check_coding(model, symbols, cond=None, slack=1.01, **coding):
  estimate = float(jnp.sum(model.bits(symbols, cond))) / 8
  data = model.encode(symbols, cond, **coding)
  assert len(data) <= estimate * slack + 16, (len(data), estimate)
  assert len(data) >= estimate * 0.99 - 16, (len(data), estimate)
  np.testing.assert_array_equal(model.decode(data, symbols.shape, cond, **coding), symbols)
  assert model.encode(symbols, cond, **coding) == data
  return len(data), estimate


def test_all_families_satisfy_the_protocol():
  models = [Uniform(4), DiscretizedLogisticMixture(),
            FactorizedDensity(2, rngs=nnx.Rngs(0))]
  assert all(isinstance(m, EntropyModel) for m in models)


def test_uniform(rng):
  model = Uniform(25)
  symbols = rng.integers(0, 25, (N // 5, 5))
  _check_coding(model, symbols)
  with pytest.raises(UsageError):
    model.encode(np.array([25]))


def _mixture_cond(rng, shape, model, scale_shift=-3.0):
  cond = rng.normal(size=shape + (model.num_params,)).astype(np.float32)
  k = model.components
  cond[..., k:2 * k] *= 0.5
  cond[..., 2 * k:3 * k] = cond[..., 2 * k:3 * k] * 0.5 + scale_shift
  return cond


def test_logistic_mixture_rgb_coupled(rng):
  model = DiscretizedLogisticMixture(levels=256, components=5, rgb_coupling=True)
  cond = _mixture_cond(rng, (131, 257, 3), model)  # odd sizes, 101k sub-pixels
  symbols = _sample_mixture(rng, model, cond)
  _check_coding(model, symbols, cond)


def test_logistic_mixture_latent_levels(rng):
  """L3C's latents: 5 channels, 25 levels, no coupling."""
  model = DiscretizedLogisticMixture(levels=25, components=4)
  cond = _mixture_cond(rng, (4, 71, 71, 5), model, scale_shift=-1.5)
  symbols = _sample_mixture(rng, model, cond)
  _check_coding(model, symbols, cond)


def _channel_rows(model, cond, symbols):
  """cond and symbols as the coder groups them: rows (N, C, P), known symbols (N, C) (None uncoupled)."""
  channels = 3 if model.rgb_coupling else 1
  return (jnp.asarray(cond.reshape(-1, channels, model.num_params)),
          jnp.asarray(symbols.reshape(-1, channels).astype(np.int32)) if model.rgb_coupling else None)


@pytest.mark.parametrize("coupled", [False, True])
def test_logistic_mixture_bits_match_coding_probabilities(rng, coupled):
  model = DiscretizedLogisticMixture(levels=256, components=3, rgb_coupling=coupled)
  cond = _mixture_cond(rng, (40, 3), model)
  symbols = _sample_mixture(rng, model, cond)
  bits = np.asarray(model.bits(symbols, cond)).reshape(-1)
  rows, known = _channel_rows(model, cond, symbols)
  for c in range(rows.shape[1]):
    pmf = np.asarray(model.channel_probabilities(rows, known, c))
    np.testing.assert_allclose(pmf.sum(axis=1), 1.0, atol=1e-5)
    picked = symbols.reshape(rows.shape[:2])[:, c]
    p = pmf[np.arange(len(pmf)), picked]
    expected = bits.reshape(rows.shape[:2])[:, c]
    ok = p > 1e-3
    np.testing.assert_allclose(-np.log2(p[ok]), expected[ok], atol=2e-3, rtol=2e-3)


@pytest.mark.parametrize("levels, coupled", [(256, False), (256, True), (100, False)])
def test_logistic_mixture_windows_cost_no_bits(rng, levels, coupled):
  """Symbols outside their window (many here: wide, multimodal mixtures) are coded through the escape, their
  block and their level in it (100 levels: a last block of 4): exact, and the stream is as long as coding
  every symbol under its full table."""
  model = DiscretizedLogisticMixture(levels=levels, components=4, rgb_coupling=coupled)
  cond = _mixture_cond(rng, (97, 211, 3), model, scale_shift=-2.0)
  cond[..., 4:8] *= 3.0  # means spread far apart: many escapes
  symbols = _sample_mixture(rng, model, cond)
  rows, known = _channel_rows(model, cond, symbols)
  flat = symbols.reshape(rows.shape[:2])
  first, _ = model.window_frequencies(rows, known, rows.shape[1] - 1)
  last = flat[:, -1]
  outside = (last < np.asarray(first)) | (last >= np.asarray(first) + WINDOW)
  assert 0.05 < outside.mean() < 0.9, outside.mean()
  windowed, _ = _check_coding(model, symbols, cond)
  encoder = Encoder()
  for c in range(rows.shape[1]):  # every symbol under its full table, quantized on the host
    encoder.put(flat[:, c], np.asarray(model.channel_probabilities(rows, known, c)))
  full = len(encoder.finish())
  assert abs(windowed - full) <= 0.001 * full + 8, (windowed, full)


def test_logistic_mixture_gradients_are_finite(rng):
  model = DiscretizedLogisticMixture(levels=256, components=3, rgb_coupling=True)
  cond = _mixture_cond(rng, (8, 3), model)
  symbols = np.array([[0, 255, 128]] * 8, np.float32)  # both open-ended bins and the middle
  grad_cond, grad_sym = jax.grad(lambda c, s: jnp.sum(model.bits(s, c)), argnums=(0, 1))(jnp.asarray(cond), symbols)
  assert np.isfinite(grad_cond).all() and np.abs(grad_cond).sum() > 0
  assert np.isfinite(grad_sym).all()


def test_logistic_mixture_rejects_bad_shapes(rng):
  model = DiscretizedLogisticMixture(levels=256, components=2, rgb_coupling=True)
  with pytest.raises(UsageError):
    model.encode(np.zeros((4, 2), np.int64), np.zeros((4, 2, model.num_params), np.float32))
  with pytest.raises(UsageError):
    model.encode(np.zeros((4, 3), np.int64), np.zeros((4, 3, 5), np.float32))


def _factorized_pmf(model, channel, support):
  grid = jnp.asarray(np.broadcast_to(support, (model.channels, support.size)), jnp.float32)
  low = jax.nn.sigmoid(model.cdf_logits(grid - 0.5))[channel]
  high = jax.nn.sigmoid(model.cdf_logits(grid + 0.5))[channel]
  pmf = np.maximum(np.asarray(high - low, np.float64), 0)
  return pmf / pmf.sum()


def test_factorized_density_codes_samples_and_escapes(rng):
  model = FactorizedDensity(3, rngs=nnx.Rngs(0))
  support = np.arange(-400, 401)
  symbols = np.stack([rng.choice(support, N // 3 + 1, p=_factorized_pmf(model, c, support)) for c in range(3)], -1)
  tables = model.coding_tables()
  size, estimate = _check_coding(model, symbols, tables=tables)
  # values far outside the tables go through the escape path
  wild = symbols[:10].copy()
  wild[0, 0], wild[1, 1], wild[2, 2] = 2**31 - 1, -(2**31), 100_000
  np.testing.assert_array_equal(model.decode(model.encode(wild, tables=tables), wild.shape, tables=tables), wild)


def test_factorized_density_learns(rng):
  """Fitting to Laplace data: its bits fall towards the data's entropy."""
  model = FactorizedDensity(1, rngs=nnx.Rngs(0))
  data = jnp.asarray(np.round(rng.laplace(scale=3.0, size=(4096, 1))), jnp.float32)
  optimizer = nnx.Optimizer(model, optax.adam(1e-2), wrt=nnx.Param)

  @nnx.jit
  def step(model, optimizer):
    loss, grads = nnx.value_and_grad(lambda m: jnp.mean(m.bits(data)))(model)
    optimizer.update(model, grads)
    return loss

  first = float(step(model, optimizer))
  for _ in range(300):
    last = float(step(model, optimizer))
  _, counts = np.unique(np.asarray(data), return_counts=True)
  entropy = -np.sum(counts / counts.sum() * np.log2(counts / counts.sum()))  # empirical, about 4.0 bits
  assert last < first - 1.0
  assert last < entropy + 0.05
  symbols = np.asarray(data, np.int64)
  _check_coding(model, symbols, slack=1.02, tables=model.coding_tables())
