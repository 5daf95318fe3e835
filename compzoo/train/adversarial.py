"""Adversarial and Wasserstein objectives: GAN (non-saturating, hinge or least squares; feature matching),
WGAN-GP, WAE, Wasserstein++.

Models for these objectives are compression (or generative) models with extra, training-only submodules
(named as in ``compzoo.models.TRAINING_ONLY``, so exports leave them out), and parameter groups are chosen
by path, never by name suffix:
  - ``model(images, key, side=...) -> RDOutput``: the generator (for a pure generative model,
    reconstruction is a sample and ``bits`` is empty);
  - ``model.discriminator(images, side) -> (logits, features)``: GAN discriminator or WGAN critic, given
    the record's side data (a label map, for a conditional discriminator); a multi-scale discriminator's
    logits are a list of per-scale maps, each scale weighted equally;
  - WAE: ``model.encode(images, key) -> latents (N, d)`` and ``model.prior_sample(key, n) -> (N, d)``.
Discriminator steps come first and see the generator's output with gradients stopped; the generator step
then sees the updated discriminator (alternating updates, as in Agustsson et al. 2019).
"""

from __future__ import annotations

import flax.struct
import jax
import jax.numpy as jnp
from flax import nnx

from compzoo import rd
from compzoo.errors import UsageError
from compzoo.models import TRAINING_ONLY
from compzoo.train.objectives import Objective, forward, global_norm, side_data, static_field

_GENERATOR = nnx.All(nnx.Param, nnx.Not(nnx.Any(*(nnx.PathContains(part) for part in TRAINING_ONLY))))
_DISCRIMINATOR = nnx.All(nnx.Param, nnx.PathContains("discriminator"))
PIXEL_SCALE = 127.5  # grey levels per unit of an image in [-1, 1]: the gradient penalty's unit


@flax.struct.dataclass
class _GeneratorAndDiscriminator(Objective):
  """What GAN and WGAN-GP share: the generator's weights, its parameter groups, and its update on
  rate_weight * bpp + distortion_weight * d(x, x̂) + an adversarial part the subclass supplies, plus the
  model's entropy_model_loss (it trains only the coding tables: GC's, DPLC's)."""

  adversarial_weight: float = 1.0
  distortion_weight: float = static_field(0.0)  # 0 leaves the distortion out of the program
  distortion: str = static_field("mse")
  rate_weight: float = 0.0

  def groups(self):
    return {"generator": _GENERATOR, "discriminator": _DISCRIMINATOR}

  def _update_generator(self, model, optimizers, batch, key, adversarial):
    """One generator step; ``adversarial(model, x̂) -> (loss part, metrics)``. Returns (loss, metrics)."""
    real = batch["image"]
    optimizer = optimizers["generator"]

    def generator_loss(model):
      output = forward(model, batch, key)
      loss, terms = adversarial(model, output.reconstruction)
      terms = {"bpp": output.bpp(), **terms}
      loss = loss + self.rate_weight * terms["bpp"] + output.entropy_model_loss
      if self.distortion_weight:
        terms["distortion"] = rd.distortion(real, output.reconstruction, self.distortion)
        loss = loss + self.distortion_weight * terms["distortion"]
      return loss, terms

    (loss, terms), grads = nnx.value_and_grad(
        generator_loss, argnums=nnx.DiffState(0, optimizer.wrt), has_aux=True)(model)
    optimizer.update(model, grads)
    return loss, {**terms, "grad_norm": global_norm(grads)}


# (discriminator's term on real logits, on fake logits, generator's term on fake logits), each per logit.
_GAN_LOSSES = {
    "nonsaturating": (lambda l: jax.nn.softplus(-l), jax.nn.softplus, lambda l: jax.nn.softplus(-l)),
    "hinge": (lambda l: jax.nn.relu(1 - l), lambda l: jax.nn.relu(1 + l), lambda l: -l),
    "least_squares": (lambda l: jnp.square(l - 1), jnp.square, lambda l: jnp.square(l - 1)),
}


def _scale_mean(term, logits) -> jax.Array:
  """The mean of ``term`` over the logits of each scale, averaged over scales: a multi-scale discriminator
  returns a list of patch-logit maps, and a coarse scale's few patches count as much as a fine one's."""
  scales = logits if isinstance(logits, (list, tuple)) else [logits]
  return sum(jnp.mean(term(scale)) for scale in scales) / len(scales)


@flax.struct.dataclass
class GAN(_GeneratorAndDiscriminator):
  """Generator: adversarial_weight * adv + distortion_weight * d + rate_weight * bpp + feature_matching * FM."""

  loss: str = static_field("nonsaturating")  # or "hinge", or "least_squares" (LSGAN, Mao et al. 2017)
  feature_matching: float = static_field(0.0)

  def __post_init__(self):
    if self.loss not in _GAN_LOSSES:
      raise UsageError(f"GAN loss {self.loss!r}: use one of {', '.join(_GAN_LOSSES)}")

  def update(self, model, optimizers, batch, key):
    real, condition = batch["image"], side_data(batch)
    fake = jax.lax.stop_gradient(forward(model, batch, key).reconstruction)
    real_term, fake_term, generator_term = _GAN_LOSSES[self.loss]

    def discriminator_loss(model):
      real_logits, _ = model.discriminator(real, condition)
      fake_logits, _ = model.discriminator(fake, condition)
      return _scale_mean(real_term, real_logits) + _scale_mean(fake_term, fake_logits)

    d_loss, grads = nnx.value_and_grad(
        discriminator_loss, argnums=nnx.DiffState(0, optimizers["discriminator"].wrt))(model)
    optimizers["discriminator"].update(model, grads)

    def adversarial(model, reconstruction):
      fake_logits, fake_features = model.discriminator(reconstruction, condition)
      value = _scale_mean(generator_term, fake_logits)
      loss, terms = self.adversarial_weight * value, {"adversarial": value}
      if self.feature_matching:
        _, real_features = model.discriminator(real, condition)
        matching = sum(jnp.mean(jnp.abs(f - jax.lax.stop_gradient(r))) for f, r in zip(fake_features, real_features))
        loss = loss + self.feature_matching * matching
        terms["feature_matching"] = matching
      return loss, terms

    g_loss, terms = self._update_generator(model, optimizers, batch, key, adversarial)
    return {"loss": g_loss, "discriminator_loss": d_loss, **terms}


@flax.struct.dataclass
class WGANGP(_GeneratorAndDiscriminator):
  """Wasserstein GAN with gradient penalty (Gulrajani et al. 2017): ``critic_steps`` critic updates per
  generator update; generator loss -E[critic(x̂)] * adversarial_weight + distortion and rate terms."""

  critic_steps: int = static_field(5)
  penalty_weight: float = 10.0
  slope_scale: float = PIXEL_SCALE  # data units per unit of the penalty's space: 1 for data that are not 0-255 images

  def __post_init__(self):
    if self.critic_steps < 1:
      raise UsageError(f"WGAN-GP needs critic_steps >= 1, got {self.critic_steps}")

  def update(self, model, optimizers, batch, key):
    real, condition = jnp.asarray(batch["image"], jnp.float32), side_data(batch)
    keys = jax.random.split(key, self.critic_steps + 1)
    for step_key in keys[1:]:
      sample_key, mix_key = jax.random.split(step_key)
      fake = jax.lax.stop_gradient(forward(model, batch, sample_key).reconstruction)
      c_loss, distance = critic_update(model, optimizers["discriminator"], real, fake, condition, mix_key,
                                       self.penalty_weight, self.slope_scale)

    def adversarial(model, reconstruction):
      value = -jnp.mean(model.discriminator(reconstruction, condition)[0])
      return self.adversarial_weight * value, {"adversarial": value}

    g_loss, terms = self._update_generator(model, optimizers, batch, keys[0], adversarial)
    return {"loss": g_loss, "critic_loss": c_loss, "wasserstein_estimate": distance, **terms}


def critic_update(model, optimizer, real, fake, condition, key, penalty_weight, slope_scale=PIXEL_SCALE):
  """One WGAN-GP critic step (Gulrajani et al. 2017) on real and (gradient-stopped) fake images: maximise
  E[critic(real)] - E[critic(fake)] with a penalty on the critic's slope at random mixtures of the two.
  Returns (critic loss, the Wasserstein estimate)."""

  def critic_loss(model):
    critic = lambda x: model.discriminator(x, condition)[0]
    alpha = jax.random.uniform(key, (real.shape[0],) + (1,) * (real.ndim - 1))
    between = alpha * real + (1 - alpha) * fake
    # Slopes per unit of [-1, 1] image (the WGAN-GP convention), not per grey level: a critic held to
    # slope 1 per grey level needs weights 127.5 times larger and trains badly.
    slopes = jax.grad(lambda x: jnp.sum(critic(x)))(between) * slope_scale
    norms = jnp.sqrt(jnp.sum(jnp.square(slopes).reshape(real.shape[0], -1), axis=1) + 1e-12)
    distance = jnp.mean(critic(real)) - jnp.mean(critic(fake))
    return -distance + penalty_weight * jnp.mean(jnp.square(norms - 1)), distance

  (loss, distance), grads = nnx.value_and_grad(critic_loss, argnums=nnx.DiffState(0, optimizer.wrt),
                                               has_aux=True)(model)
  optimizer.update(model, grads)
  return loss, distance


# The WAE paper's kernel scales (multiples of the base constant C = 2 d): a sum over them is sensitive to
# near and far mismatches alike, where one scale goes blind to one or the other.
MMD_SCALES = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)


@flax.struct.dataclass
class WAE(Objective):
  """Wasserstein autoencoder (Tolstikhin et al. 2018): d(x, G(E(x))) + penalty_weight * MMD(Q_Z, P_Z), with
  an inverse multiquadratic kernel, the WAE-MMD that distribution-preserving compression builds on (its
  WAE-GAN variant, a latent discriminator, was never trained here and is not kept)."""

  penalty_weight: float = 1.0
  distortion: str = static_field("mse")
  rate_weight: float = 0.0
  kernel_scales: tuple = static_field(MMD_SCALES)

  def groups(self):
    return {"model": _GENERATOR}

  def update(self, model, optimizers, batch, key):
    images = batch["image"]
    encode_key, prior_key = jax.random.split(key)
    prior = model.prior_sample(prior_key, images.shape[0])

    def wae_loss(model):
      penalty = mmd(model.encode(images, encode_key), prior, self.kernel_scales)
      output = forward(model, batch, encode_key)  # the same noise as the latents the penalty saw
      distortion = rd.distortion(images, output.reconstruction, self.distortion)
      loss = (distortion + self.penalty_weight * penalty + self.rate_weight * output.bpp()
              + output.entropy_model_loss)
      return loss, {"distortion": distortion, "penalty": penalty, "bpp": output.bpp()}

    (loss, terms), grads = nnx.value_and_grad(
        wae_loss, argnums=nnx.DiffState(0, optimizers["model"].wrt), has_aux=True)(model)
    optimizers["model"].update(model, grads)
    return {"loss": loss, **terms, "grad_norm": global_norm(grads)}


@flax.struct.dataclass
class WassersteinPlusPlus(Objective):
  """Wasserstein++ (Tschannen et al. 2018): the WAE objective and a WGAN-GP together. The critic tells real
  images from fakes that are half prior samples G(z) and half reconstructions G(B(E(x))); the model (E, B
  and G) minimises d(x, G(B(E(x)))) + penalty_weight * MMD(B(E(x)), P_Z) - adversarial_weight *
  E[critic(fakes)]. So G stays a generative model of the data (the WGAN part) while the code's pushforward
  matches the prior (the WAE part). Models give ``encode``, ``prior_sample`` and ``sample`` (dplc does)."""

  critic_steps: int = static_field(5)
  gradient_penalty: float = 10.0
  slope_scale: float = PIXEL_SCALE
  penalty_weight: float = 1.0
  adversarial_weight: float = 1.0
  distortion: str = static_field("mse")
  kernel_scales: tuple = static_field(MMD_SCALES)

  def __post_init__(self):
    if self.critic_steps < 1:
      raise UsageError(f"Wasserstein++ needs critic_steps >= 1, got {self.critic_steps}")

  def groups(self):
    return {"model": _GENERATOR, "discriminator": _DISCRIMINATOR}

  def _fakes(self, model, batch, key):
    """Half prior samples, half reconstructions (the first half of the batch is reconstructed)."""
    images = batch["image"]
    half = images.shape[0] // 2
    sample_key, forward_key = jax.random.split(key)
    output = model(images, forward_key, side=side_data(batch))
    samples = model.sample(sample_key, images.shape[0] - half)
    return jnp.concatenate([output.reconstruction[:half], samples]), output

  def update(self, model, optimizers, batch, key):
    real, condition = jnp.asarray(batch["image"], jnp.float32), side_data(batch)
    keys = jax.random.split(key, self.critic_steps + 2)
    for step_key in keys[2:]:
      fake_key, mix_key = jax.random.split(step_key)
      fake = jax.lax.stop_gradient(self._fakes(model, batch, fake_key)[0])
      c_loss, distance = critic_update(model, optimizers["discriminator"], real, fake, condition, mix_key,
                                       self.gradient_penalty, self.slope_scale)
    prior = model.prior_sample(keys[1], real.shape[0])

    def model_loss(model):
      fakes, output = self._fakes(model, batch, keys[0])
      latents = model.encode(real, jax.random.split(keys[0])[1])
      penalty = mmd(latents, prior, self.kernel_scales)
      adversarial = -jnp.mean(model.discriminator(fakes, condition)[0])
      distortion = rd.distortion(real, output.reconstruction, self.distortion)
      loss = (distortion + self.penalty_weight * penalty + self.adversarial_weight * adversarial
              + output.entropy_model_loss)
      return loss, {"distortion": distortion, "penalty": penalty, "adversarial": adversarial, "bpp": output.bpp()}

    (loss, terms), grads = nnx.value_and_grad(
        model_loss, argnums=nnx.DiffState(0, optimizers["model"].wrt), has_aux=True)(model)
    optimizers["model"].update(model, grads)
    return {"loss": loss, **terms, "critic_loss": c_loss, "wasserstein_estimate": distance,
            "grad_norm": global_norm(grads)}


def mmd(x, y, scales=(1.0,)) -> jax.Array:
  """Unbiased squared MMD between samples x, y (N, d) with inverse multiquadratic kernels
  k(a, b) = C / (C + |a - b|^2), C = 2 d s for each s in ``scales``, summed (the WAE paper's choice for a
  Gaussian prior, whose E|a - b|^2 is 2 d)."""
  n, d = x.shape
  squared = lambda a, b: jnp.sum(jnp.square(a[:, None] - b[None]), axis=-1)
  pairs = [squared(x, x), squared(y, y), squared(x, y)]
  off_diagonal = 1.0 - jnp.eye(n)
  total = 0.0
  for scale in scales:
    c = 2.0 * d * scale
    xx, yy, xy = (c / (c + p) for p in pairs)
    total = total + jnp.sum((xx + yy) * off_diagonal) / (n * (n - 1)) - 2.0 * jnp.mean(xy)
  return total
