"""Factorized-prior autoencoder (Ballé, Minnen, Singh, Hwang, Johnston, ICLR 2018, "bmshj2018-factorized").

    image x ──g_a (4× conv5 s2, GDN)──> y ──round──> ŷ (integer symbols) ──g_s (4× deconv5 s2, IGDN)──> x̂
                                         └── FactorizedDensity p(ŷ): bits while training, tables when coding

Training uses mixed quantization: the rate is measured on y + U(-1/2, 1/2) (Ballé's noise proxy) and the
synthesis sees round(y) with a straight-through gradient, so the decoder trains on the values it will decode
(Minnen & Singh 2020). The latent stream is coded with the density's integer tables; its CRC is the content
check, so an encoder and decoder that disagree (different hardware, different weights) fail loudly.
"""

from __future__ import annotations

import jax.numpy as jnp
from flax import nnx

from compzoo import bitstream, quantize as quantizers
from compzoo.entropy.factorized import FactorizedDensity, FactorizedTables
from compzoo.models.latent import LatentCoding, Quantized
from compzoo.nn import GDN
from compzoo.rd import RDOutput

ARCHITECTURE = "bmshj2018_factorized"  # the config name of this model (compzoo/models/__init__.py discovers it)

STAGES = 4  # stride-2 layers of each transform: Ballé's 16× downsampling (3: Torfason et al.'s 8×)


class FactorizedPriorAutoencoder(LatentCoding, nnx.Module):
  """Coding tables depend only on the weights: exports ship them (``coding_tables``), so a decoder on
  any backend uses exactly the encoder's integer tables."""

  DECODE_GUARANTEE = "shipped-tables"
  MAX_PIXELS = 1 << 25  # 34 MP: the synthesis transform runs on the whole image at once, untiled

  def __init__(self, channels: int = 128, latent: int = 192, stages: int = STAGES, *, rngs: nnx.Rngs):
    conv = lambda i, o: nnx.Conv(i, o, (5, 5), strides=2, rngs=rngs)
    deconv = lambda i, o: nnx.ConvTranspose(i, o, (5, 5), strides=2, rngs=rngs)
    n, m = channels, latent
    self.STRIDE = 2 ** stages  # the latent seam's downsampling (images are padded to a multiple of it)
    analysis, synthesis = [conv(3, n)], [deconv(m, n)]
    for _ in range(stages - 2):
      analysis += [GDN(n), conv(n, n)]
      synthesis += [GDN(n, inverse=True), deconv(n, n)]
    self.analysis = nnx.Sequential(*analysis, GDN(n), conv(n, m))
    self.synthesis = nnx.Sequential(*synthesis, GDN(n, inverse=True), deconv(n, 3))
    self.prior = FactorizedDensity(m, rngs=rngs)

  def __call__(self, images, key=None, side=None) -> RDOutput:
    """images: N×H×W×3 in [0, 255] with H, W multiples of STRIDE. ``key`` set: training (noisy rate)."""
    del side
    y = self.analyze(images)
    if key is None:
      y_hat = jnp.round(y)
      bits = self.prior.bits(y_hat)
    else:
      y_hat = quantizers.ste_round(y)
      bits = self.prior.bits(quantizers.add_uniform_noise(y, key))
    return RDOutput(self.synthesize(y_hat), {"latent": bits.sum(axis=(1, 2, 3))}, images.shape[1] * images.shape[2])

  # The latent seam (compzoo/models/latent.py): coding, evaluation and heads on latents share it.
  def analyze(self, images):
    return self.analysis(jnp.asarray(images, jnp.float32) / 255.0)

  def quantize(self, y, key=None) -> Quantized:
    """Rounding to integers (``key`` unused: training adds noise to the rate only, in ``__call__``)."""
    symbols = jnp.round(y)
    return Quantized(symbols, {"latent": symbols.astype(jnp.int32)})

  def dequantize(self, symbols):
    return symbols["latent"].astype(jnp.float32)

  def synthesize(self, values):
    return self.synthesis(values) * 255.0

  # Coding: a Codec (compzoo/codecs/learned.py) calls these with the tables an export ships.
  def coding_tables(self) -> dict:
    return self.prior.coding_tables().to_arrays()

  def prepare_coding(self, tables) -> FactorizedTables:
    return FactorizedTables.from_arrays(tables, self.prior.channels)

  def encode_symbols(self, symbols, tables):
    return [self.prior.encode(symbols["latent"], tables=tables)]

  def decode_symbols(self, streams, shape, tables):
    bitstream.expect_streams(streams, 1, "bmshj2018")
    return {"latent": self.prior.decode(streams[0], self.latent_shape(shape) + (self.prior.channels,), tables=tables)}

  def min_stream_bits(self, shape, tables) -> float:
    height, width = self.latent_shape(shape)
    return height * width * tables.min_bits_per_position()


def build(channels: int = 128, latent: int = 192, stages: int = STAGES, *, rngs: nnx.Rngs) -> FactorizedPriorAutoencoder:
  return FactorizedPriorAutoencoder(channels, latent, stages, rngs=rngs)
