"""The PhysioNet/CinC Challenge 2017 recordings (single-lead ECG, 300 Hz, AF classification).

Two readers of one data set: ``cinc2017`` reads the packed ``dev.npz`` of ``../shared/data/cinc2017`` (first
differences, labels in three versions, the paper code's fold-0 split); ``challenge_folder`` reads the layout
users download from PhysioNet (``RECORDS``, ``A0NNNN.hea`` + ``.mat``, ``REFERENCE*.csv``) through the WFDB
loader. Both give ``Recordings``: int16 signals, class ids into ``CLASSES`` and, where known, folds.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from compzoo import metrics
from compzoo.data.signals import load_signal
from compzoo.errors import UsageError

CLASSES = ("N", "A", "O", "~")  # normal rhythm, atrial fibrillation, other rhythm, too noisy
CLASS_NAMES = ("normal", "af", "other", "noisy")
RATE = 300
LABELS = ("label_v3", "label_ref", "label_original")  # the challenge's final labels first (the paper's)
SCORED = (0, 1, 2)  # N, A, O: the challenge's F1 leaves noise out
BURST, BURST_SHARE = 11, 0.22  # the paper's augmentation: about 22% of samples zeroed in bursts of 11


@dataclasses.dataclass(frozen=True)
class Recordings:
  signals: list  # int16 1-D arrays
  labels: np.ndarray  # int32 ids into CLASSES
  folds: np.ndarray  # int32 (-1 where unknown)
  names: tuple[str, ...]

  def __len__(self) -> int:
    return len(self.signals)

  def subset(self, keep) -> "Recordings":
    keep = np.flatnonzero(keep) if np.asarray(keep).dtype == bool else np.asarray(keep)
    return Recordings([self.signals[i] for i in keep], self.labels[keep], self.folds[keep],
                      tuple(self.names[i] for i in keep))

  def fold(self, fold: int) -> "Recordings":
    return self.subset(self.folds == fold)


def cinc2017(path, label: str = "label_v3") -> Recordings:
  """``dev.npz`` (or the folder holding it) -> every recording, with ``label`` (see ``LABELS``)."""
  path = Path(path)
  path = path / "dev.npz" if path.is_dir() else path
  if label not in LABELS:
    raise UsageError(f"label must be one of {', '.join(LABELS)}, not {label!r}")
  if not path.is_file():
    raise UsageError(f"no such file: {path} (the packed CinC 2017 recordings, ../shared/data/cinc2017)")
  try:
    with np.load(path, allow_pickle=False) as packed:
      delta, offsets = packed["delta"], packed["offsets"]
      labels, folds, records = packed[label].astype(np.int32), packed["fold"].astype(np.int32), packed["record"]
  except (KeyError, ValueError, OSError, AttributeError, TypeError) as e:
    raise UsageError(f"{path}: not the packed CinC 2017 set (delta, offsets, record, fold, {label}): {e}") from None
  if (offsets.ndim != 1 or len(offsets) < 2 or offsets[0] != 0 or offsets[-1] != len(delta)
      or np.any(np.diff(offsets) <= 0) or not len(labels) == len(folds) == len(records) == len(offsets) - 1):
    raise UsageError(f"{path}: offsets, labels and folds do not describe its samples")
  signals = [np.cumsum(delta[a:b], dtype=np.int16) for a, b in zip(offsets[:-1], offsets[1:])]
  return Recordings(signals, labels, folds, tuple(f"A{r:05d}" for r in records))


def challenge_folder(folder, reference: str = "REFERENCE-v3.csv") -> Recordings:
  """A PhysioNet download's folder (``training2017/``): the records ``RECORDS`` names, labelled by
  ``reference`` (``NAME,CLASS`` lines)."""
  folder = Path(folder)
  listing, labels_file = folder / "RECORDS", folder / reference
  for needed in (listing, labels_file):
    if not needed.is_file():
      raise UsageError(f"no such file: {needed}")
  labels = {}
  for number, line in enumerate(labels_file.read_text().split(), 1):
    name, _, cls = line.partition(",")
    if cls not in CLASSES:
      raise UsageError(f"{labels_file}:{number}: expected NAME,CLASS with CLASS one of {' '.join(CLASSES)}")
    labels[name] = CLASSES.index(cls)
  names = tuple(listing.read_text().split())
  missing = [name for name in names if name not in labels]
  if missing:
    raise UsageError(f"{labels_file} has no label for {missing[0]} ({len(missing)} records unlabelled)")
  signals = []
  for name in names:
    signal = load_signal(folder / f"{name}.hea")
    if signal.sample_rate != RATE or signal.channels != 1:
      raise UsageError(f"{name}: {signal.channels} channels at {signal.sample_rate} Hz, expected 1 at {RATE}")
    signals.append(signal.samples[:, 0])
  return Recordings(signals, np.array([labels[n] for n in names], np.int32), np.full(len(names), -1, np.int32), names)


def hold_out(signals: list, count: int, seed: int) -> tuple[list, list]:
  """-> (the rest, ``count`` recordings of a seeded sample): what trainers choose checkpoints on, so fold 1
  stays for reporting."""
  held = set(np.random.default_rng(seed).permutation(len(signals))[:count].tolist())
  return [x for i, x in enumerate(signals) if i not in held], [x for i, x in enumerate(signals) if i in held]


def challenge_f1(labels, predicted) -> float:
  """The challenge's score: the mean F1 of N, A and O."""
  return float(np.mean(metrics.f1_scores(labels, predicted, len(CLASSES))[list(SCORED)]))


def class_weights(labels: np.ndarray, c: float = 0.2) -> np.ndarray:
  """The paper's loss weights: (1 − c) + c·100/frequency, the frequency in percent of ``labels``."""
  percent = 100.0 * np.bincount(labels, minlength=len(CLASSES)) / len(labels)
  return ((1 - c) + c * 100.0 / np.maximum(percent, 1e-3)).astype(np.float32)


def augment(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
  """The paper's augmentation: resampled to a random length in [2/3, 4/3) of the original (heart rates of
  60-120 bpm seen as 40-180), then zero bursts of ``BURST`` samples, each sample starting one with the
  probability that zeroes about ``BURST_SHARE`` of them. -> float64."""
  length = max(int(len(x) * rng.uniform(2 / 3, 4 / 3)), 2)
  x = np.interp(np.linspace(0, len(x) - 1, length), np.arange(len(x)), x.astype(np.float64))
  start = 1 - (1 - BURST_SHARE) ** (1 / BURST)
  starts = np.flatnonzero(rng.random(length) < start)
  zero = np.zeros(length + BURST, bool)
  for offset in range(BURST):
    zero[starts + offset] = True
  return np.where(zero[:length], 0.0, x)


def context_crops(signals: list, window: int, crop: int, batch: int, rng: np.random.Generator) -> np.ndarray:
  """(batch, window + crop) int32: random crops, each with its ``window`` samples of context (zeros before
  the recording starts, as a sample-by-sample coder sees them); recordings drawn in proportion to length."""
  lengths = np.array([len(x) for x in signals], np.float64)
  picks = rng.choice(len(signals), size=batch, p=lengths / lengths.sum())
  out = np.zeros((batch, window + crop), np.int32)
  for row, i in enumerate(picks):
    x = signals[i]
    end = rng.integers(min(crop, len(x)), len(x) + 1)
    piece = x[max(end - crop - window, 0):end]
    out[row, out.shape[1] - len(piece):] = piece
  return out


def context_chunks(x: np.ndarray, window: int, chunk: int) -> tuple[np.ndarray, np.ndarray]:
  """One recording -> (chunks (n, window + chunk) int32, mask (n, chunk)) predicting every sample once, each
  chunk with its ``window`` samples of context: one compiled shape for recordings of any length."""
  padded = np.concatenate([np.zeros(window, np.int32), x.astype(np.int32)])
  n = -(-len(x) // chunk)
  padded = np.concatenate([padded, np.zeros(n * chunk - len(x), np.int32)])
  chunks = np.stack([padded[i * chunk:i * chunk + window + chunk] for i in range(n)])
  mask = (np.arange(n * chunk) < len(x)).reshape(n, chunk)
  return chunks, mask
