import jax
import jax.numpy as jnp
import numpy as np

from compzoo import quantize


def test_ste_round_forward_and_gradient():
  x = jnp.array([0.2, 0.7, -1.6, 2.5])
  np.testing.assert_array_equal(quantize.ste_round(x), jnp.round(x))
  np.testing.assert_array_equal(jax.grad(lambda v: quantize.ste_round(v).sum())(x), jnp.ones(4))


def test_uniform_noise_is_bounded_and_centered():
  x = jnp.zeros(100_000)
  y = quantize.add_uniform_noise(x, jax.random.key(0))
  assert float(jnp.abs(y).max()) <= 0.5
  assert abs(float(y.mean())) < 0.01
  assert abs(float(y.var()) - 1 / 12) < 0.002


def test_soft_to_hard_hard_forward_soft_backward():
  centers = jnp.array([-1.0, 0.0, 0.5, 2.0])
  x = jnp.array([-0.9, 0.2, 0.3, 1.9, 5.0])
  values, symbols = quantize.soft_to_hard(x, centers, sigma=2.0)
  np.testing.assert_array_equal(symbols, [0, 1, 2, 3, 3])
  np.testing.assert_array_equal(values, centers[symbols])
  gx, gc = jax.grad(lambda v, c: quantize.soft_to_hard(v, c, 2.0)[0].sum(), argnums=(0, 1))(x, centers)
  assert np.abs(gx).sum() > 0 and np.abs(gc).sum() > 0
  assert np.isfinite(gx).all() and np.isfinite(gc).all()


def test_learned_centers_sorted_and_dequantize():
  module = quantize.LearnedCenters(6)
  module.centers[...] = jnp.array([3.0, -1.0, 0.0, 1.0, 2.0, -2.0])
  values, symbols = module(jnp.array([-1.9, 2.9, 0.1]))
  np.testing.assert_array_equal(symbols, [0, 5, 2])
  np.testing.assert_array_equal(module.dequantize(symbols), values)
