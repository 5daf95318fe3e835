"""Mean-scale hyperprior (Minnen, Ballé, Toderici, NeurIPS 2018, without the context model: "mbt2018-mean").

    x ──g_a──> y ──h_a──> z ──round──> ẑ (FactorizedDensity) ──h_s──> μ, σ
                 └─────── q = round(y - μ) (IndexedGaussian: σ picks a shipped table) ──> ŷ = q + μ ──g_s──> x̂

The transforms are bmshj2018's (4 stride-2 conv5 layers with GDN); the hyper transforms are the paper's
(conv3, then two stride-2 conv5, leaky ReLU), with h_s producing 2M channels, scales then means. Training
measures both rates on noisy values and feeds the synthesis transforms rounded ones (straight-through), as
bmshj2018 does. h_s's output is cropped to y's grid, so images need only be a multiple of 16 (not 64).

Decode guarantee: same-backend. Both integer table sets ship, but which scale table codes each symbol comes
from h_s's float output: another backend may choose a neighbouring table, which the symbol check refuses.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from compzoo import bitstream, quantize as quantizers
from compzoo.entropy.factorized import FactorizedDensity, FactorizedTables
from compzoo.entropy.gaussian import GaussianTables, gaussian_bits, scale_indexes
from compzoo.errors import UsageError
from compzoo.models.latent import LatentCoding, Quantized
from compzoo.nn import GDN
from compzoo.rd import RDOutput

ARCHITECTURE = "mbt2018_mean"  # the config name of this model (compzoo/models/__init__.py discovers it)
STAGES = 4


class MeanScaleHyperprior(LatentCoding, nnx.Module):
  DECODE_GUARANTEE = "same-backend"
  MAX_PIXELS = 1 << 25
  STRIDE = 2 ** STAGES

  def __init__(self, channels: int = 128, latent: int = 192, *, rngs: nnx.Rngs):
    n, m = channels, latent
    conv = lambda i, o, k=5, s=2: nnx.Conv(i, o, (k, k), strides=s, rngs=rngs)
    deconv = lambda i, o: nnx.ConvTranspose(i, o, (5, 5), strides=2, rngs=rngs)
    self.latent = m
    self.analysis = nnx.Sequential(conv(3, n), GDN(n), conv(n, n), GDN(n), conv(n, n), GDN(n), conv(n, m))
    self.synthesis = nnx.Sequential(deconv(m, n), GDN(n, inverse=True), deconv(n, n), GDN(n, inverse=True),
                                    deconv(n, n), GDN(n, inverse=True), deconv(n, 3))
    self.hyper_analysis = nnx.Sequential(conv(m, n, 3, 1), jax.nn.leaky_relu, conv(n, n), jax.nn.leaky_relu,
                                         conv(n, n))
    self.hyper_synthesis = nnx.Sequential(deconv(n, m), jax.nn.leaky_relu, deconv(m, m * 3 // 2),
                                          jax.nn.leaky_relu, conv(m * 3 // 2, 2 * m, 3, 1))
    self.hyper_prior = FactorizedDensity(n, rngs=rngs)

  def __call__(self, images, key=None, side=None) -> RDOutput:
    """images: N×H×W×3 in [0, 255], H and W multiples of 16. ``key`` set: training (noisy rates)."""
    del side
    y = self.analyze(images)
    z = self.hyper_analysis(y)
    if key is None:
      z_hat = jnp.round(z)
      z_bits = self.hyper_prior.bits(z_hat)
    else:
      z_key, y_key = jax.random.split(key)
      z_hat = quantizers.ste_round(z)
      z_bits = self.hyper_prior.bits(quantizers.add_uniform_noise(z, z_key))
    means, scales = self.mean_scale(z_hat, y.shape)
    if key is None:
      y_hat = jnp.round(y - means) + means
      y_bits = gaussian_bits(y_hat, means, scales)
    else:
      y_hat = quantizers.ste_round(y - means) + means
      y_bits = gaussian_bits(quantizers.add_uniform_noise(y, y_key), means, scales)
    return RDOutput(self.synthesize(y_hat), {"y": y_bits.sum(axis=(1, 2, 3)), "z": z_bits.sum(axis=(1, 2, 3))},
                    images.shape[1] * images.shape[2])

  def mean_scale(self, z_hat, y_shape):
    """h_s(ẑ) cropped to y's grid -> (μ, σ)."""
    params = self.hyper_synthesis(z_hat)[:, :y_shape[1], :y_shape[2]]
    scales, means = jnp.split(params, 2, axis=-1)
    return means, scales

  # The latent seam (compzoo/models/latent.py).
  def analyze(self, images):
    return self.analysis(jnp.asarray(images, jnp.float32) / 255.0)

  def quantize(self, y, key=None) -> Quantized:
    z = jnp.round(self.hyper_analysis(y))
    means, _ = self.mean_scale(z, y.shape)
    q = jnp.round(y - means)
    return Quantized(q + means, {"y": q.astype(jnp.int32), "z": z.astype(jnp.int32)})

  def dequantize(self, symbols):
    z = symbols["z"].astype(jnp.float32)
    y_shape = symbols["y"].shape
    means, _ = self.mean_scale(z, y_shape)
    return symbols["y"].astype(jnp.float32) + means

  def synthesize(self, values):
    return self.synthesis(values) * 255.0

  # Coding: z through the factorized tables, then y through the Gaussian tables ẑ's scales index.
  def coding_tables(self) -> dict:
    return {"z": self.hyper_prior.coding_tables().to_arrays(), "y": GaussianTables.build().to_arrays()}

  def prepare_coding(self, tables) -> dict:
    if not isinstance(tables, dict) or set(tables) != {"y", "z"}:
      raise UsageError("mbt2018 exports' coding tables must hold 'y' and 'z'")
    return {"z": FactorizedTables.from_arrays(tables["z"], self.hyper_prior.channels),
            "y": GaussianTables.from_arrays(tables["y"])}

  def encode_symbols(self, symbols, prepared):
    z_stream = self.hyper_prior.encode(symbols["z"], tables=prepared["z"])
    indexes = self._indexes(symbols["z"], symbols["y"].shape)
    return [z_stream, prepared["y"].encode(symbols["y"], indexes)]

  def decode_symbols(self, streams, shape, prepared):
    bitstream.expect_streams(streams, 2, "mbt2018")
    height, width = self.latent_shape(shape)
    z_shape = (-(-height // 4), -(-width // 4), self.hyper_prior.channels)
    z = self.hyper_prior.decode(streams[0], z_shape, tables=prepared["z"])
    y_shape = (height, width, self.latent)
    return {"z": z, "y": prepared["y"].decode(streams[1], self._indexes(z, y_shape))}

  def _indexes(self, z, y_shape):
    return np.asarray(_scale_indexes_of(self, jnp.asarray(z)[None], tuple(y_shape)))[0]

  def min_stream_bits(self, shape, prepared) -> float:
    height, width = self.latent_shape(shape)
    z_positions = -(-height // 4) * -(-width // 4)
    return (z_positions * prepared["z"].min_bits_per_position()
            + height * width * self.latent * prepared["y"].min_bits_per_symbol())


@nnx.jit(static_argnums=2)
def _scale_indexes_of(model, z, y_shape):
  _, scales = model.mean_scale(z.astype(jnp.float32), (1,) + y_shape)
  return scale_indexes(scales)


def build(channels: int = 128, latent: int = 192, *, rngs: nnx.Rngs) -> MeanScaleHyperprior:
  return MeanScaleHyperprior(channels, latent, rngs=rngs)
