"""Factorized-prior autoencoder (Ballé, Minnen, Singh, Hwang, Johnston, ICLR 2018, "bmshj2018-factorized").

    image x ──g_a (4× conv5 s2, GDN)──> y ──round──> ŷ (integer symbols) ──g_s (4× deconv5 s2, IGDN)──> x̂
                                         └── FactorizedDensity p(ŷ): bits while training, tables when coding

Training uses mixed quantization: the rate is measured on y + U(-1/2, 1/2) (Ballé's noise proxy) and the
synthesis sees round(y) with a straight-through gradient, so the decoder trains on the values it will decode
(Minnen & Singh 2020). The latent stream is coded with the density's integer tables; its CRC is the content
check, so an encoder and decoder that disagree (different hardware, different weights) fail loudly.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from compzoo import bitstream, quantize
from compzoo.entropy.factorized import FactorizedDensity
from compzoo.errors import BitstreamError
from compzoo.models import pad_to_multiple
from compzoo.nn import GDN
from compzoo.rd import RDOutput

STRIDE = 16  # total downsampling of the analysis transform


class FactorizedPriorAutoencoder(nnx.Module):
  def __init__(self, channels: int = 128, latent: int = 192, *, rngs: nnx.Rngs):
    conv = lambda i, o: nnx.Conv(i, o, (5, 5), strides=2, rngs=rngs)
    deconv = lambda i, o: nnx.ConvTranspose(i, o, (5, 5), strides=2, rngs=rngs)
    n, m = channels, latent
    self.analysis = nnx.Sequential(conv(3, n), GDN(n), conv(n, n), GDN(n), conv(n, n), GDN(n), conv(n, m))
    self.synthesis = nnx.Sequential(deconv(m, n), GDN(n, inverse=True), deconv(n, n), GDN(n, inverse=True),
                                    deconv(n, n), GDN(n, inverse=True), deconv(n, 3))
    self.prior = FactorizedDensity(m, rngs=rngs)

  def __call__(self, images, key=None) -> RDOutput:
    """images: N×H×W×3 in [0, 255] with H, W multiples of 16. ``key`` set: training (noisy rate)."""
    y = self.analysis(jnp.asarray(images, jnp.float32) / 255.0)
    if key is None:
      y_hat = jnp.round(y)
      bits = self.prior.bits(y_hat)
    else:
      y_hat = quantize.ste_round(y)
      bits = self.prior.bits(quantize.add_uniform_noise(y, key))
    reconstruction = self.synthesis(y_hat) * 255.0
    return RDOutput(reconstruction, {"latent": bits.sum(axis=(1, 2, 3))}, images.shape[1] * images.shape[2])

  # Coding: a Codec (compzoo/codecs/learned.py) calls these with tables built once by prepare_coding.
  def prepare_coding(self):
    return self.prior.coding_tables()

  def encode_image(self, image: np.ndarray, tables):
    padded = pad_to_multiple(image, STRIDE)
    symbols = np.asarray(_analyze(self, padded[None]))[0].astype(np.int32)
    return [self.prior.encode(symbols, tables=tables)], bitstream.crc32(symbols)

  def decode_image(self, streams, shape, tables):
    if len(streams) != 1:
      raise BitstreamError(f"bmshj2018 files hold 1 stream, this one has {len(streams)}")
    height, width, _ = shape
    latent_shape = (-(-height // STRIDE), -(-width // STRIDE), self.prior.channels)
    symbols = self.prior.decode(streams[0], latent_shape, tables=tables)
    image = np.asarray(_synthesize(self, symbols[None]))[0, :height, :width]
    return image, bitstream.crc32(symbols)


@nnx.jit
def _analyze(model, images):
  return jnp.round(model.analysis(images.astype(jnp.float32) / 255.0))


@nnx.jit
def _synthesize(model, symbols):
  return jnp.clip(jnp.round(model.synthesis(symbols.astype(jnp.float32)) * 255.0), 0, 255).astype(jnp.uint8)


def build(channels: int = 128, latent: int = 192, *, rngs: nnx.Rngs) -> FactorizedPriorAutoencoder:
  return FactorizedPriorAutoencoder(channels, latent, rngs=rngs)
