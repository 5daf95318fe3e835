"""Atrial-fibrillation classifiers for single-lead ECG: a CNN and a CRNN on log spectrograms.

Zihlmann, Perekrestenko and Tschannen, "Convolutional recurrent neural networks for electrocardiogram
classification" (Computing in Cardiology 2017). A recording of any length becomes a log spectrogram (64-sample
windows, hop 32, at 300 Hz: 33 frequencies per ~0.1 s frame); blocks of 2-D convolutions (batch norm, ReLU,
dropout, the last of each block with stride 2) then either an average over the recording's own frames (the
CNN; padding is masked out) or a bidirectional LSTM over time whose outputs are averaged the same way (the
CRNN). Classes: normal rhythm, AF, other rhythm, noisy (compzoo/data/ecg.py). The paper's networks (6 blocks
of 4 convolutions, 32 to 192 channels; 4 blocks of 6 and 3 LSTM layers of 200) are sized for a GPU; the
defaults here keep the design at a width a 2-core CPU trains in minutes (experiments/ecg_classify.py).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from compzoo.data.ecg import CLASSES
from compzoo.errors import UsageError

ARCHITECTURE = "ecg_classifier"
NPERSEG, HOP = 64, 32  # the paper's spectrogram: nperseg 64, noverlap 32
FREQUENCIES = NPERSEG // 2 + 1


def frames(lengths):
  """Spectrogram frames of recordings of ``lengths`` samples (a partial last window counts, zero-padded);
  a Python int for an int (static shapes), an array for an array."""
  if isinstance(lengths, int):
    return max((lengths - NPERSEG + HOP - 1) // HOP + 1, 1)
  return jnp.maximum((jnp.asarray(lengths) - NPERSEG + HOP - 1) // HOP + 1, 1)


def log_spectrogram(x):
  """(B, T) samples (ADC units, 1000 per mV) -> (B, frames(T), 33) log power, Hann windows of 64, hop 32."""
  x = jnp.asarray(x, jnp.float32) * (1.0 / 1000.0)
  count = frames(int(x.shape[1]))
  x = jnp.pad(x, ((0, 0), (0, (count - 1) * HOP + NPERSEG - x.shape[1])))
  index = np.arange(count)[:, None] * HOP + np.arange(NPERSEG)[None, :]
  windows = x[:, index] * jnp.asarray(np.hanning(NPERSEG + 1)[:-1], jnp.float32)
  windows = windows - jnp.mean(windows, axis=-1, keepdims=True)
  power = jnp.abs(jnp.fft.rfft(windows, axis=-1)) ** 2
  return jnp.log(power + 1e-6)


class ConvBlock(nnx.Module):
  def __init__(self, in_channels: int, out_channels: int, convs: int, dropout: float, *, rngs: nnx.Rngs):
    # Explicit padding: with 'SAME' a stride-2 convolution pads by the input's parity, so a padded recording
    # would be sampled on other frames than the same recording unpadded.
    self.convs = nnx.List([nnx.Conv(in_channels if i == 0 else out_channels, out_channels, (3, 3),
                                    strides=(2, 2) if i == convs - 1 else (1, 1), padding=((1, 1), (1, 1)),
                                    use_bias=False, rngs=rngs)
                           for i in range(convs)])
    self.norms = nnx.List([nnx.BatchNorm(out_channels, rngs=rngs) for _ in range(convs)])
    self.dropout = nnx.Dropout(dropout)  # keyed per call: an export holds no random state

  def __call__(self, h, valid, rngs=None):
    """h (B, frames, frequencies, C), valid frames per row (B,) -> (the block's output, its valid frames).
    What lies past a recording's frames is zeroed after every convolution, so padding is never read."""
    for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
      if i == len(self.convs) - 1:
        valid = (valid + 1) // 2
      h = self.dropout(jax.nn.relu(norm(conv(h))), deterministic=rngs is None, rngs=rngs)
      h = h * _mask(valid, h.shape[1])[:, :, None, None]
    return h, valid


class EcgClassifier(nnx.Module):
  def __init__(self, kind: str = "cnn", width: int = 16, blocks: int = 4, convs: int = 2, lstm: int = 32,
               dropout: float = 0.15, inputs: str = "signal", latent_channels: int = 8, latent_stride: int = 16,
               *, rngs: nnx.Rngs):
    if kind not in ("cnn", "crnn") or inputs not in ("signal", "latents"):
      raise UsageError(f"kind must be cnn or crnn and inputs signal or latents, not {kind!r}, {inputs!r}")
    self.kind, self.block_count, self.inputs, self.latent_stride = kind, blocks, inputs, latent_stride
    # On a lossy ECG codec's latents (compzoo/models/ecg_lossy.py: C values per latent_stride samples) the
    # blocks run along time only: the latents' channels are the first convolution's input channels.
    rows = FREQUENCIES if inputs == "signal" else 1
    first = 1 if inputs == "signal" else latent_channels
    self.input_norm = nnx.BatchNorm(FREQUENCIES if inputs == "signal" else latent_channels, rngs=rngs)
    channels = [first] + [width * (i + 1) for i in range(blocks)]  # the paper's growth: +width per block
    self.blocks = nnx.List([ConvBlock(channels[i], channels[i + 1], convs, dropout, rngs=rngs) for i in range(blocks)])
    features = channels[-1] * (-(-rows // 2 ** blocks))
    if kind == "crnn":
      # rngs=False: no random state for an export to hold (carries start at zero, given in ``features``)
      self.forward = nnx.RNN(nnx.OptimizedLSTMCell(features, lstm, rngs=rngs), rngs=False)
      self.backward = nnx.RNN(nnx.OptimizedLSTMCell(features, lstm, rngs=rngs), rngs=False)
      self.lstm = lstm
      features = 2 * lstm
    self.out = nnx.Linear(features, len(CLASSES), rngs=rngs)

  def features(self, x, lengths, rngs=None):
    """Samples (B, T) and their lengths (or latents (B, P, C) and the recordings' lengths in samples) -> the
    pooled features (B, F) the class head reads. ``rngs`` (training): dropout's keys; without them it is off."""
    if self.inputs == "latents":
      valid = (jnp.asarray(lengths) + self.latent_stride - 1) // self.latent_stride
      h = self.input_norm(jnp.asarray(x, jnp.float32)) * _mask(valid, x.shape[1])[..., None]
      h = h[:, :, None, :]  # (B, positions, 1, C)
    else:
      valid = frames(lengths)
      x = jnp.where(jnp.arange(x.shape[1])[None, :] < jnp.asarray(lengths)[:, None], x, 0)  # a last frame reads zeros
      spectrogram = self.input_norm(log_spectrogram(x))  # (B, frames, 33)
      h = (spectrogram * _mask(valid, spectrogram.shape[1])[..., None])[..., None]
    for block in self.blocks:
      h, valid = block(h, valid, rngs)
    h = h.reshape(h.shape[0], h.shape[1], -1)  # (B, frames / 2^blocks, F)
    if self.kind == "crnn":  # one bidirectional LSTM layer, each direction over the recording's own frames
      zeros = jnp.zeros((h.shape[0], self.lstm), h.dtype)
      h = jnp.concatenate([
          self.forward(h, initial_carry=(zeros, zeros), seq_lengths=valid),
          self.backward(h, initial_carry=(zeros, zeros), seq_lengths=valid, reverse=True, keep_order=True)], axis=-1)
    mask = _mask(valid, h.shape[1])[..., None]
    return jnp.sum(h * mask, axis=1) / jnp.maximum(jnp.sum(mask, axis=1), 1.0)

  def __call__(self, x, lengths, rngs=None):
    """Samples (B, T) padded with zeros (or latents (B, P, C)), lengths in samples (B,) -> class logits (B, 4)."""
    return self.out(self.features(x, lengths, rngs))


def _mask(valid, count: int):
  """(B,) valid frames -> (B, count) float32: 1 on a row's own frames, 0 past them."""
  return (jnp.arange(count)[None, :] < jnp.asarray(valid)[:, None]).astype(jnp.float32)


def build(*, rngs: nnx.Rngs, **settings) -> EcgClassifier:
  return EcgClassifier(rngs=rngs, **settings)
