"""Each objective on a small problem where its loss (or the distance it minimises) falls, stepped through
the loop's own jitted step; and credit assignment through a recurrent model's unroll, chosen by the
objective: truncated BPTT with a window past the end is BPTT bit for bit, shorter windows differ."""

import flax
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
from compzoo.train.adversarial import mmd
from compzoo.train.objectives import RateDistortion
from compzoo.train.registry import make_objective
from toy_models import LinearRecurrence
from train_helpers import run_steps

DATA_MEAN = np.array([2.0, -1.0], np.float32)


def _train(model, objective_config, batches, steps, learning_rate=1e-2):
  objective = make_objective(ml_collections.ConfigDict(objective_config))
  return run_steps(model, objective, dict(name="adam", learning_rate=learning_rate, b1=0.5), batches, steps)


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

  def __call__(self, images, key=None, side=None):
    noise = jax.random.normal(jax.random.PRNGKey(0) if key is None else key, (images.shape[0], 4))
    return RDOutput(self.net(noise), {}, 1)


def _sample_distance(model):
  samples = np.asarray(model(np.zeros((512, 2)), jax.random.PRNGKey(123)).reconstruction)
  return float(np.linalg.norm(samples.mean(0) - DATA_MEAN))  # toy GANs oscillate in spread; the mean is robust


@pytest.mark.slow
@pytest.mark.parametrize("settings", [
    dict(name="gan", loss="nonsaturating"),
    dict(name="gan", loss="hinge", feature_matching=1.0),
    dict(name="wgan_gp", critic_steps=3, slope_scale=1.0),  # points, not 0-255 images
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

  def encode(self, x, key=None):
    return self.encoder(x)

  def prior_sample(self, key, n):
    return jax.random.normal(key, (n, 2))

  def __call__(self, x, key=None, side=None):
    return RDOutput(self.decoder(self.encode(x, key)), {}, 1)


def _manifold(i, n=128):
  t = np.random.default_rng(i).normal(size=(n, 2)).astype(np.float32)
  return {"image": np.concatenate([3 * t + 5, np.tanh(t)], axis=1)}


@pytest.mark.slow
def test_wae_reconstructs_and_matches_the_prior():
  model, history = _train(PointAutoencoder(nnx.Rngs(1)), dict(name="wae", penalty_weight=1.0),
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

  def __call__(self, images, key=None, side=None):
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


def _sequence(steps=12):
  x = np.random.default_rng(0).normal(size=(16, steps)).astype(np.float32)
  target = np.zeros_like(x)
  for t in range(steps):
    target[:, t] = np.tanh(0.8 * (target[:, t - 1] if t else 0) + x[:, t])
  return {"image": x, "target": target}


def _gradient(credit, steps="all"):
  objective = make_objective(ml_collections.ConfigDict(dict(name="recurrent", credit=credit, steps=steps)))
  model = LinearRecurrence()
  before = {k: np.asarray(v) for k, v in nnx.to_pure_dict(nnx.state(model)).items()}
  sgd = nnx.Optimizer(model, optax.sgd(1.0), wrt=nnx.Param)
  metrics = objective.update(model, {"model": sgd}, _sequence(), None)
  after = nnx.to_pure_dict(nnx.state(model))
  return {k: before[k] - np.asarray(after[k]) for k in before}, metrics  # lr 1: the gradient itself


def test_truncated_bptt_with_a_window_past_the_end_is_bptt_exactly():
  full, metrics = _gradient("bptt")
  for window in (12, 50):
    truncated, _ = _gradient(f"tbptt:{window}")
    for name in full:
      np.testing.assert_array_equal(truncated[name], full[name])  # bit for bit
  one, _ = _gradient("tbptt:1")
  three, _ = _gradient("tbptt:3")
  assert not np.allclose(one["w"], full["w"]) and not np.allclose(three["w"], full["w"])
  assert not np.allclose(one["w"], three["w"])
  # With a window of 1 the output unit's own input weight still learns, but the units that reach the
  # output only through earlier steps get nothing: exactly what truncation means.
  assert one["u"][0, 0] != 0 and (one["u"][0, 1:] == 0).all() and (full["u"][0, 1:] != 0).all()
  assert set(metrics) >= {"loss", "loss/first_stage", "loss/last_stage", "grad_norm"}


def test_bptt_matches_an_explicit_unrolled_gradient():
  batch = _sequence()

  def loss(w, u):
    h, total = jnp.zeros((16, 4)), 0.0
    for t in range(12):
      h = jnp.tanh(h @ w + batch["image"][:, t:t + 1] @ u)
      total += jnp.mean(jnp.square(batch["target"][:, t] - h[:, 0]))
    return total

  model = LinearRecurrence()
  expected = jax.grad(loss, argnums=(0, 1))(model.w[...], model.u[...])
  got, _ = _gradient("bptt")
  np.testing.assert_allclose(got["w"], expected[0], rtol=2e-5, atol=1e-6)
  np.testing.assert_allclose(got["u"], expected[1], rtol=2e-5, atol=1e-6)


def test_per_step_losses_are_the_objective_s_choice():
  every, every_metrics = _gradient("bptt", steps="all")
  last, last_metrics = _gradient("bptt", steps="last")
  assert not np.allclose(every["w"], last["w"])
  assert float(last_metrics["loss/first_stage"]) == 0.0 < float(every_metrics["loss/first_stage"])
  assert np.isclose(float(last_metrics["loss"]), float(last_metrics["loss/last_stage"]))


def test_recurrent_training_through_the_loop_step_lowers_the_loss():
  objective = dict(name="recurrent", credit="tbptt:4")
  _, history = _train(LinearRecurrence(), objective, lambda i: _sequence(), 80, learning_rate=3e-2)
  assert history[-1]["loss"] < 0.3 * history[0]["loss"]


def test_unknown_objectives_and_settings_are_usage_errors():
  from compzoo.errors import UsageError
  with pytest.raises(UsageError, match="unknown objective"):
    make_objective(ml_collections.ConfigDict(dict(name="nope")))
  with pytest.raises(UsageError, match="bad settings"):
    make_objective(ml_collections.ConfigDict(dict(name="rate_distortion", lambda_=1)))
  with pytest.raises(UsageError, match="hinge"):
    make_objective(ml_collections.ConfigDict(dict(name="gan", loss="wasserstein")))
  for credit in ("tbptt:0", "tbptt", "sab", "sab:0", "uoro:2", "rtrl:x", "bptt:3", "kfac"):
    with pytest.raises(UsageError, match="credit|truncated"):
      make_objective(ml_collections.ConfigDict(dict(name="recurrent", credit=credit)))


class TwoClassNet(nnx.Module):
  def __init__(self, rngs):
    self.net = _mlp([2, 16, 2], rngs)

  def classify(self, x, side=None):
    return self.net(x)


def _two_classes(i, n=64):
  labels = np.random.default_rng(i).integers(0, 2, n)
  points = np.random.default_rng(i + 1).normal(0, 0.5, (n, 2)) + np.stack([labels * 3.0, -labels * 2.0], 1)
  return {"image": points.astype(np.float32), "label": labels.astype(np.int32)}


def test_classification_learns_separable_classes():
  _, history = _train(TwoClassNet(nnx.Rngs(0)), dict(name="classification"), _two_classes, 80, learning_rate=1e-2)
  assert history[-1]["accuracy"] > 0.95 and history[-1]["loss"] < 0.3 * history[0]["loss"]


def test_multiscale_mmd_sees_near_and_far_mismatches():
  prior = jax.random.normal(jax.random.PRNGKey(0), (256, 8))
  same = jax.random.normal(jax.random.PRNGKey(1), (256, 8))
  scales = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)
  for shifted in (same + 0.5, same + 5.0, same * 0.3):
    assert mmd(shifted, prior, scales) > 10 * abs(mmd(same, prior, scales))


@flax.struct.dataclass
class _AnnealedRate(RateDistortion):
  """λ doubles every step: a schedule written in the objective alone (``at``), the loop unchanged."""

  def at(self, step):
    return self.replace(lmbda=self.lmbda * 2.0 ** step.astype(jnp.float32))

  def loss(self, model, batch, key):
    loss, terms = super().loss(model, batch, key)
    return loss, {**terms, "lmbda": jnp.asarray(self.lmbda)}


def test_objectives_see_the_step():
  model = models.build(dict(name="bmshj2018_factorized", channels=8, latent=8, stages=2))
  images = np.random.default_rng(0).integers(0, 256, (2, 16, 16, 3)).astype(np.float32)
  _, history = run_steps(model, _AnnealedRate(0.01, "mse"), dict(name="adam", learning_rate=1e-3),
                         lambda i: {"image": images}, 3)
  np.testing.assert_allclose([h["lmbda"] for h in history], [0.01, 0.02, 0.04], rtol=1e-6)
