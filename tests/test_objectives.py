"""Each objective on a small problem where its loss (or the distance it minimises) falls, stepped through
the loop's own jitted step; and the gradient-rule hook a model uses to bring its own learning rule."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest
from flax import nnx

from compzoo import models
from compzoo.entropy.logistic_mixture import DiscretizedLogisticMixture
from compzoo.rd import RDOutput
from compzoo.train import mesh as mesh_lib
from compzoo.train.adversarial import mmd
from compzoo.train.loop import TrainState, compile_step
from compzoo.train.objectives import SingleLoss, make_objective

DATA_MEAN = np.array([2.0, -1.0], np.float32)


def _run(model, objective, optimizer, batches, steps):
  """``steps`` steps of the loop's own compiled step on one device -> (trained model, metrics per step)."""
  state = TrainState(model, objective, ml_collections.ConfigDict(optimizer), steps)
  graphdef, params = nnx.split(state)
  step = compile_step(objective, graphdef, mesh_lib.make_mesh(jax.devices()[:1]))
  history = []
  for i in range(steps):
    params, step_metrics = step(params, batches(i), jax.random.PRNGKey(i))
    history.append(jax.device_get(step_metrics))
  nnx.update(state, params)
  return state.model, history


def _train(model, objective_config, batches, steps, learning_rate=1e-2):
  objective = make_objective(ml_collections.ConfigDict(objective_config))
  return _run(model, objective, dict(name="adam", learning_rate=learning_rate, b1=0.5), batches, steps)


def _points(i, n=64):
  return {"image": np.random.default_rng(i).normal(DATA_MEAN, 0.3, (n, 2)).astype(np.float32)}


def _mlp(sizes, rngs):
  layers = []
  for a, b in zip(sizes[:-1], sizes[1:]):
    layers += [nnx.Linear(a, b, rngs=rngs), jax.nn.leaky_relu]
  return nnx.Sequential(*layers[:-1])


class Discriminator(nnx.Module):
  def __init__(self, rngs):
    self.hidden = nnx.Linear(2, 32, rngs=rngs)
    self.out = nnx.Linear(32, 1, rngs=rngs)

  def __call__(self, x, condition=None):
    features = jax.nn.leaky_relu(self.hidden(x))
    return self.out(features)[:, 0], [features]


class PointGenerator(nnx.Module):
  """A zero-rate generator: noise -> 2-D points (the generative end of the DPLC spectrum)."""

  def __init__(self, rngs):
    self.net = _mlp([4, 32, 2], rngs)
    self.discriminator = Discriminator(rngs)

  def __call__(self, images, key=None):
    noise = jax.random.normal(jax.random.PRNGKey(0) if key is None else key, (images.shape[0], 4))
    return RDOutput(self.net(noise), {}, 1)


def _sample_distance(model):
  samples = np.asarray(model(np.zeros((512, 2)), jax.random.PRNGKey(123)).reconstruction)
  return float(np.linalg.norm(samples.mean(0) - DATA_MEAN))  # toy GANs oscillate in spread; the mean is robust


@pytest.mark.parametrize("settings", [
    dict(name="gan", loss="nonsaturating"),
    dict(name="gan", loss="hinge", feature_matching=1.0),
    dict(name="wgan_gp", critic_steps=3),
])
def test_adversarial_objectives_move_samples_to_the_data(settings):
  model = PointGenerator(nnx.Rngs(0))
  before = _sample_distance(model)
  discriminator_before = jax.tree.map(np.array, nnx.to_pure_dict(nnx.state(model.discriminator)))
  model, history = _train(model, settings, _points, 300, learning_rate=5e-3)
  after = _sample_distance(model)
  assert after < 0.4 * before, (before, after)
  assert all(np.isfinite(h["loss"]) for h in history)
  after_state = nnx.to_pure_dict(nnx.state(model.discriminator))
  for layer in ("hidden", "out"):  # (a critic's output bias has zero gradient: only kernels are compared)
    assert not np.allclose(discriminator_before[layer]["kernel"], after_state[layer]["kernel"]), layer


class PointAutoencoder(nnx.Module):
  """4-D data on a 2-D manifold; a 2-D latent that the penalty pulls towards N(0, I)."""

  def __init__(self, rngs):
    self.encoder = _mlp([4, 32, 2], rngs)
    self.decoder = _mlp([2, 32, 4], rngs)
    self.latent_discriminator = nnx.Sequential(nnx.Linear(2, 32, rngs=rngs), jax.nn.leaky_relu,
                                               nnx.Linear(32, 1, rngs=rngs), lambda x: x[:, 0])

  def encode(self, x, key=None):
    return self.encoder(x)

  def prior_sample(self, key, n):
    return jax.random.normal(key, (n, 2))

  def __call__(self, x, key=None):
    return RDOutput(self.decoder(self.encode(x, key)), {}, 1)


def _manifold(i, n=128):
  t = np.random.default_rng(i).normal(size=(n, 2)).astype(np.float32)
  return {"image": np.concatenate([3 * t + 5, np.tanh(t)], axis=1)}


@pytest.mark.parametrize("penalty", ["mmd", "adversarial"])
def test_wae_reconstructs_and_matches_the_prior(penalty):
  model, history = _train(PointAutoencoder(nnx.Rngs(1)), dict(name="wae", penalty=penalty, penalty_weight=1.0),
                          _manifold, 400, learning_rate=3e-3)
  assert np.mean([h["loss"] for h in history[-20:]]) < 0.3 * np.mean([h["loss"] for h in history[:5]])
  latents = model.encode(_manifold(999, 512)["image"])
  prior = jax.random.normal(jax.random.PRNGKey(5), (512, 2))
  far = prior + 3.0
  assert mmd(latents, prior) < 0.25 * mmd(far, prior)


def test_rate_distortion_loss_falls_on_images():
  model = models.build(ml_collections.ConfigDict(dict(name="bmshj2018_factorized", channels=8, latent=8)))
  photos = np.random.default_rng(0).integers(0, 256, (1, 40, 40, 3)).astype(np.float32)
  smooth = lambda i: {"image": np.repeat(np.repeat(photos[:, i % 8:i % 8 + 8, :8], 4, 1), 4, 2)[:, :32, :32]}
  _, history = _train(model, dict(name="rate_distortion", lmbda=0.01), smooth, 80, learning_rate=3e-3)
  first, last = history[0], history[-1]
  assert last["loss"] < 0.5 * first["loss"]
  assert {"bpp", "distortion", "psnr", "bpp/latent", "grad_norm"} <= set(last)


class PixelModel(nnx.Module):
  """Lossless toy: one logistic mixture per colour channel, learned from the data's histogram."""

  def __init__(self, rngs):
    self.params = nnx.Param(jnp.zeros((3, 9)))
    self.mixture = DiscretizedLogisticMixture(components=3)

  def __call__(self, images, key=None):
    images = jnp.asarray(images, jnp.float32)
    cond = jnp.broadcast_to(self.params[...], images.shape + (9,))
    bits = self.mixture.bits(images, cond)
    return RDOutput(None, {"pixels": bits.sum(axis=(1, 2, 3))}, images.shape[1] * images.shape[2])


def test_lossless_nll_falls_towards_the_entropy():
  rng = np.random.default_rng(0)
  batches = lambda i: {"image": np.clip(rng.normal(120, 6, (4, 8, 8, 3)), 0, 255).round()}
  _, history = _train(PixelModel(nnx.Rngs(0)), dict(name="lossless"), batches, 300, learning_rate=5e-2)
  assert history[0]["bpsp"] > 6
  # The entropy of a rounded N(120, 6) is log2(6 sqrt(2 pi e)) = 4.63 bits.
  assert np.mean([h["bpsp"] for h in history[-20:]]) < 5.0


class Recurrence(nnx.Module):
  """h_t = w h_{t-1} + x_t, fitted to a sequence made with w = 0.8. With ``truncation`` it brings its own
  gradient rule, truncated BPTT, as the recurrent-refinement method does with BPTT/SAB/UORO/RTRL."""

  rule_calls = []

  def __init__(self, truncation=0):
    self.w = nnx.Param(jnp.asarray(0.1))
    self.truncation = truncation

  def __call__(self, x, key=None, truncation=0):
    h, outputs = jnp.zeros(x.shape[0]), []
    for t in range(x.shape[1]):
      if truncation and t % truncation == 0:
        h = jax.lax.stop_gradient(h)
      h = self.w[...] * h + x[:, t]
      outputs.append(h)
    return RDOutput(jnp.stack(outputs, 1), {}, 1)


class TruncatedRecurrence(Recurrence):
  def gradient_rule(self, loss_fn, batch, key):
    Recurrence.rule_calls.append(1)  # runs while tracing: once per compilation
    truncated = lambda model, batch, key: loss_fn(model, batch, key, truncation=self.truncation)
    return nnx.value_and_grad(truncated, has_aux=True)(self, batch, key)


class FitSequence(SingleLoss):
  def loss(self, model, batch, key, truncation=0):
    error = jnp.mean(jnp.square(model(batch["image"], truncation=truncation).reconstruction - batch["target"]))
    return error, {"loss": error}


def _sequence():
  x = np.random.default_rng(0).normal(size=(16, 12)).astype(np.float32)
  target = np.zeros_like(x)
  for t in range(12):
    target[:, t] = (0.8 * target[:, t - 1] if t else 0) + x[:, t]
  return {"image": x, "target": target}


def _sgd_steps(model, steps):
  sgd = dict(name="sgd", learning_rate=0.01, momentum=0.0)
  model, history = _run(model, FitSequence(), sgd, lambda i: _sequence(), steps)
  return float(model.w[...]), [float(h["loss"]) for h in history]


def test_models_can_supply_their_own_gradient_rule():
  batch = _sequence()

  def reference_gradient(truncation):
    loss = lambda w: FitSequence().loss(_with_w(w), batch, None, truncation=truncation)[0]
    return float(jax.grad(loss)(jnp.asarray(0.1)))

  Recurrence.rule_calls.clear()
  w_full, _ = _sgd_steps(Recurrence(), 1)
  assert not Recurrence.rule_calls
  w_truncated, losses = _sgd_steps(TruncatedRecurrence(truncation=1), 1)
  assert Recurrence.rule_calls, "the loop must use the model's gradient rule"
  np.testing.assert_allclose(w_full, 0.1 - 0.01 * reference_gradient(0), rtol=1e-5)
  np.testing.assert_allclose(w_truncated, 0.1 - 0.01 * reference_gradient(1), rtol=1e-5)
  assert abs(w_full - w_truncated) > 1e-3
  _, losses = _sgd_steps(TruncatedRecurrence(truncation=3), 60)
  assert losses[-1] < 0.2 * losses[0]


def _with_w(w):
  model = Recurrence()
  model.w = nnx.Param(w)
  return model


def test_unknown_objectives_and_settings_are_usage_errors():
  from compzoo.errors import UsageError
  with pytest.raises(UsageError, match="unknown objective"):
    make_objective(ml_collections.ConfigDict(dict(name="nope")))
  with pytest.raises(UsageError, match="bad settings"):
    make_objective(ml_collections.ConfigDict(dict(name="rate_distortion", lambda_=1)))
  with pytest.raises(UsageError, match="hinge"):
    make_objective(ml_collections.ConfigDict(dict(name="gan", loss="wasserstein")))
