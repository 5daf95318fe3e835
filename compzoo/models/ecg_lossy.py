"""A learned lossy ECG codec: a 1-D convolutional autoencoder with Ballé's factorized prior.

The analysis transform maps a recording (ADC units / 1000 = mV) through ``stages`` stride-2 convolutions to
``channels`` latents per 2^stages samples; the latents are rounded and coded with the zoo's shared
``FactorizedDensity`` (compzoo/entropy/factorized.py: its integer tables ship in the export, so the symbols
decode exactly on any backend); the synthesis transform's output is rounded to int16. Training adds uniform
noise for the rate (Ballé et al. 2018) and minimises bits per sample + λ · MSE in mV². The latents are also
what a classifier on the compressed file reads (``latents_of_signal`` / ``latents_of_streams``), without
synthesis: the Torfason et al. protocol, on ECG (experiments/ecg_lossy.py).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from compzoo import bitstream
from compzoo.entropy.factorized import FactorizedDensity, FactorizedTables
from compzoo.models.latent import symbols_check

ARCHITECTURE = "ecg_lossy"
SCALE = 1000.0  # ADC units per mV (CinC 2017's gain)
KERNEL = 5
BUCKET = 1024  # recordings are padded (edge) to a multiple of this: one compiled transform per bucket, not per length


class EcgLossy(nnx.Module):
  LOSSLESS = False
  DECODE_GUARANTEE = "shipped-tables"
  MODALITY = "signal"
  MAX_PIXELS = 1 << 25  # samples × channels: untiled transforms, memory grows with the recording

  def __init__(self, channels: int = 8, features: int = 32, stages: int = 4, *, rngs: nnx.Rngs):
    self.stages, self.stride = stages, 2 ** stages
    widths = [1] + [features] * stages
    self.down = nnx.List([nnx.Conv(widths[i], widths[i + 1], (KERNEL,), strides=(2,), padding="SAME", rngs=rngs)
                          for i in range(stages)])
    self.to_latent = nnx.Conv(features, channels, (3,), padding="SAME", rngs=rngs)
    self.from_latent = nnx.Conv(channels, features, (3,), padding="SAME", rngs=rngs)
    self.up = nnx.List([nnx.ConvTranspose(features, features, (KERNEL,), strides=(2,), padding="SAME", rngs=rngs)
                        for _ in range(stages)])
    self.out = nnx.Conv(features, 1, (KERNEL,), padding="SAME", rngs=rngs)
    self.prior = FactorizedDensity(channels, rngs=rngs)

  # Transforms: samples (B, T) with T a multiple of ``stride``.
  def analyze(self, x):
    h = (jnp.asarray(x, jnp.float32) / SCALE)[..., None]
    for conv in self.down:
      h = jax.nn.leaky_relu(conv(h), 0.1)
    return self.to_latent(h)  # (B, T / stride, C)

  def synthesize(self, y):
    h = jax.nn.leaky_relu(self.from_latent(y), 0.1)
    for conv in self.up:
      h = jax.nn.leaky_relu(conv(h), 0.1)
    return self.out(h)[..., 0] * SCALE  # (B, T) ADC units

  def __call__(self, x, key=None):
    """Training: -> (bits per sample (B,), reconstruction in ADC units (B, T)). With ``key`` the rate sees
    uniform noise and synthesis the rounded latents through a straight-through estimator."""
    y = self.analyze(x)
    if key is None:
      noisy = jnp.round(y)
    else:
      noisy = y + jax.random.uniform(key, y.shape, minval=-0.5, maxval=0.5)
    rounded = y + jax.lax.stop_gradient(jnp.round(y) - y)
    bits = jnp.sum(self.prior.bits(noisy), axis=(1, 2)) / x.shape[1]
    return bits, self.synthesize(rounded)

  # Coding (compzoo/codecs/learned.py: LearnedSignalCodec).
  def coding_tables(self) -> dict:
    return self.prior.coding_tables().to_arrays()

  def prepare_coding(self, tables) -> FactorizedTables:
    return FactorizedTables.from_arrays(tables, self.prior.channels)

  def min_stream_bits(self, shape, tables) -> float:
    return shape[1] * self._positions(shape[0]) * tables.min_bits_per_position()

  def symbols_of_signal(self, samples: np.ndarray) -> np.ndarray:
    """int16 (T, channels) -> int32 symbols (channels, T / stride rounded up, C): each channel coded alone.
    The analysis runs on the recording edge-padded to a multiple of ``BUCKET``; only the latents of its own
    samples are kept."""
    x = np.asarray(samples, np.float32).T
    padded = np.pad(x, ((0, 0), (0, -x.shape[1] % BUCKET)), mode="edge")
    return np.asarray(_analyze(self, padded)).round().astype(np.int32)[:, :self._positions(x.shape[1])]

  def encode_signal(self, samples: np.ndarray, tables) -> tuple[list[bytes], int]:
    symbols = self.symbols_of_signal(samples)
    return [self.prior.encode(symbols, tables=tables)], symbols_check({"latent": symbols})

  def latents_of_streams(self, streams, shape, tables) -> tuple[np.ndarray, int]:
    bitstream.expect_streams(streams, 1, "ecg")
    symbols = self.prior.decode(streams[0], (shape[1], self._positions(shape[0]), self.prior.channels), tables=tables)
    return symbols, symbols_check({"latent": symbols})

  def decode_signal(self, streams, shape, tables) -> tuple[np.ndarray, int]:
    symbols, check = self.latents_of_streams(streams, shape, tables)
    positions = BUCKET // self.stride
    padded = np.pad(symbols, ((0, 0), (0, -symbols.shape[1] % positions), (0, 0)), mode="edge")
    decoded = np.asarray(_synthesize(self, padded.astype(np.float32)))[:, :shape[0]]
    return np.clip(np.round(decoded), -32768, 32767).astype(np.int16).T, check

  def _positions(self, length: int) -> int:
    return -(-length // self.stride)


@nnx.jit
def _analyze(model, x):
  return model.analyze(x)


@nnx.jit
def _synthesize(model, y):
  return model.synthesize(y)


def build(*, rngs: nnx.Rngs, **settings) -> EcgLossy:
  return EcgLossy(rngs=rngs, **settings)
