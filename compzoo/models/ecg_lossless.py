"""A learned lossless codec for single-lead ECG: a causal network predicts each sample's distribution.

Each int16 sample x_t (one of 65,536 levels) is coded under the zoo's discretized logistic mixture
(compzoo/entropy/logistic_mixture.py, its windowed tables and escapes, as L3C's pixels), whose parameters a
causal convolutional network computes from the ``window`` samples before it: a first convolution
over the first differences, dilated residual convolutions (dilations up to a heartbeat's length, so the
previous beat is in view), a linear predictor on the last differences (what FLAC's LPC does) added to the
means. Means are offsets from x_{t-1}, so the network never sees the baseline's absolute level.

Coding is sample by sample (a decoder knows x_t only after decoding it): encoder and decoder evaluate the
same jitted window function on the same ``window`` samples (zeros before the recording starts),
so their tables agree bit for bit on one backend: ``same-backend``, as L3C. Training evaluates the same
network over whole crops at once, with the same zero padding at a recording's start.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from compzoo import bitstream
from compzoo.entropy import DiscretizedLogisticMixture
from compzoo.entropy.coder import PRECISION, Decoder, Encoder
from compzoo.errors import UsageError

ARCHITECTURE = "ecg_lossless"
LEVELS = 1 << 16
OFFSET = 1 << 15  # symbol = sample + OFFSET
_LEVEL = 2.0 / (LEVELS - 1)  # one level in the mixture's [-1, 1] units
MIN_SCALE = 0.2  # levels: a sample never costs less than -log2(tanh(0.25 / 0.2)) = 0.237 bits (the bomb bound)
MIN_BITS_PER_SAMPLE = 0.2
CODED_CAP = 3.0 * PRECISION  # the most one sample can cost a file (three table entries of at least 2^-24)


class EcgLossless(nnx.Module):
  LOSSLESS = True
  DECODE_GUARANTEE = "same-backend"
  MODALITY = "signal"
  # One network pass per sample: 2^20 samples (58 minutes at 300 Hz) is the most a file may claim.
  MAX_PIXELS = 1 << 20

  def __init__(self, features: int = 48, first_kernel: int = 16, dilations=(16, 32, 64, 128, 256),
               linear_taps: int = 32, components: int = 4, *, rngs: nnx.Rngs):
    self.first_kernel, self.dilations, self.linear_taps = first_kernel, tuple(dilations), linear_taps
    self.span = first_kernel + sum(self.dilations)  # differences each prediction reads
    self.window = self.span + 1  # samples each prediction reads: x_t's are x[t - window .. t - 1]
    if linear_taps > self.span:
      raise UsageError(f"linear_taps {linear_taps} exceed the {self.span} differences the network reads")
    self.components = components
    self.first = nnx.Conv(2, features, kernel_size=(first_kernel,), padding="VALID", rngs=rngs)
    self.dilated = nnx.List([nnx.Conv(features, features, kernel_size=(2,), kernel_dilation=(d,), padding="VALID",
                                      rngs=rngs) for d in self.dilations])
    self.hidden = nnx.Linear(features, features, rngs=rngs)
    # Small random weights: zeros would give every component the same gradient, and they would stay one.
    self.head = nnx.Linear(features, 3 * components, kernel_init=nnx.initializers.normal(0.01), rngs=rngs)
    self.linear = nnx.Linear(linear_taps, 1, kernel_init=nnx.initializers.zeros, rngs=rngs)
    self.mixture = DiscretizedLogisticMixture(levels=LEVELS, components=components,
                                              min_log_scale=math.log(MIN_SCALE * _LEVEL), max_log_scale=0.0)

  def params(self, x):
    """int samples (B, n) -> mixture parameters (B, n - window + 1, 3K): row o is the distribution of the
    sample after x[o .. o + window - 1] (the last row's sample lies past the input)."""
    x = jnp.asarray(x, jnp.int32)
    d = (x[:, 1:] - x[:, :-1]).astype(jnp.float32)  # d[j] = x[j+1] - x[j]
    features = _features(d)
    h = jax.nn.relu(self.first(features))
    for conv, dilation in zip(self.dilated, self.dilations):
      h = h[:, dilation:] + jax.nn.relu(conv(h))
    rows = h.shape[1]
    start = self.span - self.linear_taps
    taps = _windows(features[:, start:start + rows + self.linear_taps - 1, 0], self.linear_taps)  # the last ones
    return self._outputs(h, taps, x[:, self.span:])

  def last_params(self, window):
    """``params`` of one window (``window`` samples) -> (1, 3K), computing only what its last row needs: the
    first layer at the 2^len(dilations) times the dilated layers reach, then each layer halves them. This is
    the function coding runs, sample by sample, on both sides."""
    x = jnp.asarray(window, jnp.int32)
    features = _features((x[1:] - x[:-1]).astype(jnp.float32))  # (span, 2)
    # Times (indexes into features) the last output reaches: span - 1 minus any subset of the dilations; the
    # subset's bit i (dilation i) is axis -(i + 1) of the (2, ..., 2) layout below.
    subsets = np.arange(1 << len(self.dilations))
    times = self.span - 1 - sum(((subsets >> i) & 1) * d for i, d in enumerate(self.dilations))
    patches = features[times[:, None] - np.arange(self.first_kernel)[::-1][None, :]]  # (2^D, kernel, 2)
    h = jax.nn.relu(jnp.einsum("tki,kio->to", patches, self.first.kernel[...]) + self.first.bias[...])
    for conv in self.dilated:
      pairs = h.reshape(-1, 2, h.shape[-1])  # [:, 0]: time tau, [:, 1]: tau - dilation
      kernel = conv.kernel[...]
      h = pairs[:, 0] + jax.nn.relu(pairs[:, 1] @ kernel[0] + pairs[:, 0] @ kernel[1] + conv.bias[...])
    taps = features[None, self.span - self.linear_taps:, 0]
    return self._outputs(h[None], taps[None], x[None, -1:])[0]

  def _outputs(self, h, taps, previous):
    """Last hidden activations (B, L, F), linear taps (B, L, taps), the sample before each predicted one
    (B, L) -> mixture parameters (B, L, 3K)."""
    h = jax.nn.relu(self.hidden(h))
    raw = self.head(h)
    shift = 64.0 * self.linear(taps)  # levels
    k = self.components
    previous = previous.astype(jnp.float32)[..., None]
    mean_levels = previous + OFFSET + shift + 16.0 * raw[..., k:2 * k]
    means = mean_levels * _LEVEL - 1.0
    log_scales = raw[..., 2 * k:] + math.log(8.0 * _LEVEL)
    return jnp.concatenate([raw[..., :k], means, log_scales], axis=-1)

  def bits(self, x, cap: float | None = CODED_CAP):
    """int samples (B, window + L) -> bits of each of the last L samples (B, L), at most ``cap`` each: the
    coder's tables give every entry at least 2^-24, so no sample costs a file more than three of those
    (window, block, level); a sample the model finds impossible (a recording's first, from zeros) would
    otherwise count thousands of bits it never costs."""
    cond = self.params(x)[:, :-1]
    symbols = jnp.asarray(x, jnp.int32)[:, self.window:] + OFFSET
    bits = self.mixture.bits(symbols, cond)
    return bits if cap is None else jnp.minimum(bits, cap)

  # ------------------------------------------------------------------------------------------------ coding
  def coding_tables(self):
    return None

  def prepare_coding(self, tables=None):
    del tables
    graphdef, state = nnx.split(self)
    step = jax.jit(lambda state, window: nnx.merge(graphdef, state).last_params(window))
    return lambda window: np.asarray(step(state, window))  # the one function both sides run per sample

  def min_stream_bits(self, shape, prepared=None) -> float:
    return MIN_BITS_PER_SAMPLE * shape[0] * shape[1]

  def encode_signal(self, samples: np.ndarray, prepared) -> tuple[list[bytes], int | None]:
    encoder = Encoder()
    for channel in samples.T:
      padded = np.concatenate([np.zeros(self.window, np.int32), channel.astype(np.int32)])
      for t in range(len(channel)):
        cond = prepared(padded[t:t + self.window])
        self.mixture.encode_to(encoder, padded[t + self.window:t + self.window + 1] + OFFSET, cond)
    return [encoder.finish()], None

  def decode_signal(self, streams, shape, prepared) -> tuple[np.ndarray, int | None]:
    bitstream.expect_streams(streams, 1, "ecg-lossless")
    decoder = Decoder(streams[0])
    out = np.zeros(shape, np.int16)
    for c in range(shape[1]):
      padded = np.zeros(self.window + shape[0], np.int32)
      for t in range(shape[0]):
        cond = prepared(padded[t:t + self.window])
        padded[t + self.window] = self.mixture.decode_from(decoder, (1,), cond)[0] - OFFSET
      out[:, c] = padded[self.window:]
    return out, None


def _features(d):
  """First differences -> the network's two input channels: linear (what a linear predictor needs) and
  compressed (so a QRS complex's large steps do not swamp the small ones)."""
  return jnp.stack([d * (1 / 64), jnp.arcsinh(d * (1 / 8)) * 0.25], axis=-1)


def _windows(values, taps: int):
  """(B, T) -> (B, T - taps + 1, taps): each position's last ``taps`` values, the newest last."""
  length = values.shape[1] - taps + 1
  return jnp.stack([values[:, i:i + length] for i in range(taps)], axis=-1)


def build(*, rngs: nnx.Rngs, **settings) -> EcgLossless:
  return EcgLossless(rngs=rngs, **settings)
