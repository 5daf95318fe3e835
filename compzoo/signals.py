"""Signals beside images: 1-D int16 recordings (ECG, audio) with one or more channels and a sample rate.

A ``Signal`` is what signal codecs take and give back: C-ordered int16 samples of shape (samples, channels)
and an integer rate in Hz. ``as_signal`` is the one check every entry point makes (codecs, loaders, the CLI):
integer samples that fit int16, no NaN, not empty, not absurdly many channels, a sane rate. Quality measures
for lossy signal codecs (PRD, SNR) live here too, since they need nothing but NumPy.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from compzoo.errors import UsageError

MAX_CHANNELS = 64  # a 12-lead ECG or a 64-channel EEG; the container holds at most 255
MAX_RATE = (1 << 20) - 1  # Hz: what FLAC's STREAMINFO's 20 bits hold (libFLAC itself stops at 655,350)
DEFAULT_RATE = 300  # the PhysioNet/CinC 2017 recordings'


@dataclasses.dataclass(frozen=True, eq=False)
class Signal:
  samples: np.ndarray  # int16 (samples, channels), C-ordered
  sample_rate: int

  @property
  def shape(self) -> tuple[int, int]:
    return tuple(self.samples.shape)

  @property
  def length(self) -> int:
    return self.samples.shape[0]

  @property
  def channels(self) -> int:
    return self.samples.shape[1]

  def __eq__(self, other) -> bool:
    return (isinstance(other, Signal) and self.sample_rate == other.sample_rate
            and np.array_equal(self.samples, other.samples))


def check_rate(sample_rate) -> int:
  if isinstance(sample_rate, (bool, np.bool_)) or not isinstance(sample_rate, (int, np.integer)):
    raise UsageError(f"a sample rate is a whole number of Hz, got {sample_rate!r}")
  if not 1 <= sample_rate <= MAX_RATE:
    raise UsageError(f"sample rate {sample_rate} Hz outside [1, {MAX_RATE}]")
  return int(sample_rate)


def as_signal(samples, sample_rate: int = DEFAULT_RATE, *, source: str = "signal") -> Signal:
  """Samples (1-D, or samples × channels) -> a checked ``Signal`` (a C-ordered int16 copy).

  Integer samples of any type are taken when every value fits int16; floats only when they are whole numbers
  (a float64 .npy of integers, as MATLAB writes), never NaN or infinite: rounding real values silently would
  make a 'lossless' codec lossy."""
  if isinstance(samples, Signal):
    samples, sample_rate = samples.samples, samples.sample_rate
  rate = check_rate(sample_rate)
  x = np.asarray(samples)
  if x.ndim == 1:
    x = x[:, None]
  if x.ndim != 2:
    raise UsageError(f"{source}: signal codecs take 1-D samples or samples × channels, got shape {x.shape}")
  if x.shape[0] == 0 or x.shape[1] == 0:
    raise UsageError(f"{source}: empty signal of shape {x.shape}")
  if not 1 <= x.shape[1] <= MAX_CHANNELS:
    raise UsageError(f"{source}: {x.shape[1]} channels, at most {MAX_CHANNELS} (is it channels × samples? "
                     "give samples × channels)")
  if x.dtype == np.int16:
    return Signal(np.array(x, order="C", copy=True), rate)
  if np.issubdtype(x.dtype, np.floating):
    if not np.all(np.isfinite(x)):
      raise UsageError(f"{source}: the signal holds NaN or infinite values")
    if np.any(x != np.round(x)):
      raise UsageError(f"{source}: {x.dtype} samples that are not whole numbers; signal codecs take int16 "
                       "(scale and round them yourself, knowing the unit)")
  elif not np.issubdtype(x.dtype, np.integer):
    raise UsageError(f"{source}: signal codecs take int16 samples, got {x.dtype}")
  if x.min() < -32768 or x.max() > 32767:
    raise UsageError(f"{source}: values {x.min():.0f}..{x.max():.0f} do not fit int16")
  return Signal(np.array(x, np.int16, order="C"), rate)


def prd(original, decoded) -> float:
  """Percentage root-mean-square difference, 100·‖x − y‖/‖x − mean(x)‖ (the mean-removed form, PRDN, so a
  baseline offset cannot make a codec look good)."""
  x, y = np.asarray(original, np.float64), np.asarray(decoded, np.float64)
  energy = np.sum((x - x.mean(axis=0)) ** 2)
  return float(100.0 * np.sqrt(np.sum((x - y) ** 2) / max(energy, 1e-12)))


def snr_db(original, decoded) -> float:
  """10·log10 of the mean-removed signal's energy over the error's (inf for an exact copy)."""
  x, y = np.asarray(original, np.float64), np.asarray(decoded, np.float64)
  error = np.sum((x - y) ** 2)
  if error == 0:
    return float("inf")
  return float(10.0 * np.log10(max(np.sum((x - x.mean(axis=0)) ** 2), 1e-12) / error))


def bits_per_sample(num_bytes: int, signal: Signal) -> float:
  return 8.0 * num_bytes / (signal.length * signal.channels)
