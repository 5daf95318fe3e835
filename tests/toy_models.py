"""Small models that exercise the trainer's seams. ``use_toy_models`` registers this module as the
model 'toy' (config: ``dict(name="toy", kind=...)``)."""

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from compzoo import models
from compzoo.nn.recurrence import Memory, Unroll
from compzoo.rd import RDOutput

VOID = 11  # CamVid's unlabelled class


def use_toy_models(monkeypatch):
  monkeypatch.setitem(models.ARCHITECTURES, "toy", __name__)


class PatchDiscriminator(nnx.Module):
  def __init__(self, rngs):
    self.conv = nnx.Conv(3, 8, (3, 3), strides=2, rngs=rngs)
    self.out = nnx.Conv(8, 1, (3, 3), rngs=rngs)

  def __call__(self, images, side=None):
    features = jax.nn.leaky_relu(self.conv(jnp.asarray(images, jnp.float32) / 127.5 - 1.0), 0.2)
    return self.out(features)[..., 0].mean(axis=(1, 2)), [features]


class GANAutoencoder(nnx.Module):
  """A 2x-downsampling autoencoder with rounding (no entropy model), optionally with a discriminator: the
  shape of an extreme-compression GAN, small enough for the CPU."""

  def __init__(self, features: int = 8, discriminator: bool = True, *, rngs: nnx.Rngs):
    self.encoder = nnx.Conv(3, features, (4, 4), strides=2, rngs=rngs)
    self.decoder = nnx.ConvTranspose(features, 3, (4, 4), strides=2, rngs=rngs)
    if discriminator:
      self.discriminator = PatchDiscriminator(rngs)

  def __call__(self, images, key=None, side=None):
    y = self.encoder(jnp.asarray(images, jnp.float32) / 255.0)
    y_hat = y + jax.lax.stop_gradient(jnp.round(y * 4) / 4 - y)
    return RDOutput(self.decoder(y_hat) * 255.0, {}, images.shape[1] * images.shape[2])


class PixelClassifier(nnx.Module):
  """Per-pixel class logits from colour and 5x5 neighbourhoods (for the 'segmentation' objective): it can
  only fit CamVid's label maps if they are aligned with the pixels they label."""

  def __init__(self, classes: int = VOID + 1, *, rngs: nnx.Rngs):
    self.first = nnx.Conv(3, 24, (3, 3), rngs=rngs)
    self.second = nnx.Conv(24, 24, (3, 3), rngs=rngs)
    self.logits = nnx.Conv(24, classes, (1, 1), rngs=rngs)

  def segment(self, images, side=None):
    hidden = jax.nn.relu(self.first(jnp.asarray(images, jnp.float32) / 127.5 - 1.0))
    return self.logits(jax.nn.relu(self.second(hidden)))


class LinearRecurrence(nnx.Module):
  """h_t = tanh(w h_{t-1} + u x_t), output h_t[0]: one slot read and written at every step. With a
  ``memory`` (stride, topk) each step also reads the kept states through sparse attention, as SAB's
  models do. Records: ``image`` (inputs) and ``target``, both [batch, steps]."""

  def __init__(self, seed=0, width=4, memory=None):
    rng = np.random.default_rng(seed)
    self.w = nnx.Param(jnp.asarray(rng.normal(0, 0.5, (width, width)), jnp.float32))
    self.u = nnx.Param(jnp.asarray(rng.normal(0, 0.5, (1, width)), jnp.float32))
    self.width, self.memory = width, None if memory is None else Memory(*memory)

  def unroll(self, batch):
    steps = batch["image"].shape[1]
    return Unroll(inputs=batch["image"], targets=batch["target"], reads=np.zeros((steps, 1), np.int32),
                  writes=np.zeros(steps, np.int32), stages=np.arange(steps), slots=1, width=self.width,
                  memory=self.memory)

  def update(self, reads, inputs_t):
    return jnp.tanh(reads[:, 0] @ self.w[...] + inputs_t[:, None] @ self.u[...]), None

  def readout(self, state, aux, inputs_t):
    return state[:, 0]


def build(*, rngs: nnx.Rngs, kind: str, **settings):
  return {"gan_autoencoder": GANAutoencoder, "pixel_classifier": PixelClassifier}[kind](**settings, rngs=rngs)
