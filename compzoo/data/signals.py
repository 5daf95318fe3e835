"""Reading and writing signals: NumPy ``.npy`` files, PhysioNet challenge ``.mat`` files and WFDB records.

A WFDB record (``NAME.hea`` + its signal file; the PhysioNet/CinC 2017 recordings are ``.hea`` + ``.mat``)
is read through the ``wfdb`` package as digital (ADC) samples, so nothing is scaled or rounded; its header
gives the rate. A ``.mat`` without a header is read as the challenge stores it (variable ``val``, channels ×
samples) at the rate given. Output goes to ``.npy`` or to a WFDB record (``.hea``, ``.dat`` or no suffix),
written atomically. A compzoo file keeps samples and rate only: a WFDB record written from one has gain 1
and baseline 0 (physical units = ADC units), since the gain was not stored.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import numpy as np

from compzoo import signals
from compzoo.data.images import write_atomically
from compzoo.errors import UsageError

WFDB_SUFFIXES = (".hea", ".dat", "")


def load_signal(path, sample_rate: int | None = None) -> signals.Signal:
  """``.npy`` (1-D or samples × channels), ``.mat`` (challenge layout, or a WFDB record's signal file when
  its ``.hea`` lies beside it) or a WFDB record (``NAME``, ``NAME.hea``, ``NAME.dat``) -> a checked Signal.
  ``sample_rate`` is needed where the file states none (default 300 Hz); a header's rate wins, and a
  different ``sample_rate`` is refused."""
  path = Path(path)
  header = path.with_suffix(".hea") if path.suffix in (".hea", ".dat", ".mat") else path.parent / (path.name + ".hea")
  if path.suffix == ".npy":
    samples, stated = _read_npy(path), None
  elif header.is_file():
    samples, stated = _read_wfdb(header)
  elif path.suffix == ".mat":
    samples, stated = _read_mat(path), None
  elif path.suffix in (".hea", ".dat", ""):
    raise UsageError(f"no such file: {header}" if path.suffix != ".dat" or path.is_file() else f"no such file: {path}")
  else:
    raise UsageError(f"{path}: signals are read from .npy, .mat or WFDB records (.hea), not {path.suffix!r}")
  if sample_rate is not None:
    signals.check_rate(sample_rate)
    if stated is not None and stated != sample_rate:
      raise UsageError(f"{path}: its header states {stated} Hz, not the {sample_rate} Hz given")
  rate = stated if stated is not None else sample_rate if sample_rate is not None else signals.DEFAULT_RATE
  return signals.as_signal(samples, rate, source=str(path))


def _read_npy(path: Path) -> np.ndarray:
  if not path.is_file():
    raise UsageError(f"no such file: {path}")
  try:  # memory-mapped first: a header claiming more than the file holds is refused, never allocated
    mapped = np.load(path, mmap_mode="r", allow_pickle=False)
    if not isinstance(mapped, np.ndarray):
      mapped.close()
      raise ValueError("an .npz archive, not one array")
    return np.array(mapped)
  except (ValueError, OSError, EOFError, MemoryError) as e:
    raise UsageError(f"{path}: not a readable .npy array ({e})") from None


def _read_mat(path: Path) -> np.ndarray:
  import scipy.io

  try:
    contents = scipy.io.loadmat(path)
  except Exception as e:  # scipy raises several types for damaged files
    raise UsageError(f"{path}: not a readable MATLAB file ({type(e).__name__}: {e})") from None
  if "val" not in contents:
    raise UsageError(f"{path}: no variable 'val' (the PhysioNet challenge layout, channels × samples)")
  val = np.asarray(contents["val"])
  if val.ndim != 2:
    raise UsageError(f"{path}: 'val' has shape {val.shape}, expected channels × samples")
  return val.T


def _read_wfdb(header: Path) -> tuple[np.ndarray, int]:
  import wfdb

  try:
    record = wfdb.rdrecord(str(header.with_suffix("")), physical=False)
  except Exception as e:  # wfdb raises ValueError, FileNotFoundError, struct errors... for bad records
    raise UsageError(f"{header}: not a readable WFDB record ({type(e).__name__}: {e})") from None
  rate = record.fs
  if rate is None or rate != int(rate):
    raise UsageError(f"{header}: sample rate {rate} is not a whole number of Hz")
  if record.d_signal is None:
    raise UsageError(f"{header}: the record holds no samples")
  return record.d_signal, int(rate)


def check_signal_path(path) -> Path:
  """An output path a signal can be written to: ``.npy`` or a WFDB record (``.hea``, ``.dat``, no suffix)."""
  path = Path(path)
  if path.suffix not in (".npy",) + WFDB_SUFFIXES:
    raise UsageError(f"{path}: signals are written as .npy or as a WFDB record (.hea, .dat or no suffix)")
  if not path.parent.is_dir():
    raise UsageError(f"{path}: no such folder {path.parent}")
  return path


def wfdb_files(path) -> list[Path]:
  """The files a WFDB output named ``path`` writes (its header and its signal file)."""
  path = Path(path)
  base = path.with_suffix("") if path.suffix in (".hea", ".dat") else path
  return [base.with_name(base.name + ".hea"), base.with_name(base.name + ".dat")]


def save_signal(path, signal: signals.Signal) -> list[Path]:
  """Writes ``signal`` (-> the paths written): ``.npy`` (1-D for one channel) or a WFDB record in format 16."""
  path = check_signal_path(path)
  if path.suffix == ".npy":
    buffer = io.BytesIO()
    samples = signal.samples[:, 0] if signal.channels == 1 else signal.samples
    np.save(buffer, samples, allow_pickle=False)
    write_atomically(path, buffer.getvalue())
    return [path]
  return _save_wfdb(path, signal)


def _save_wfdb(path: Path, signal: signals.Signal) -> list[Path]:
  import wfdb

  header, data = wfdb_files(path)
  record = header.name[:-len(".hea")]
  if not record or not all(c.isalnum() or c in "_-" for c in record):
    raise UsageError(f"{path}: a WFDB record name holds letters, digits, '_' and '-' only")
  with tempfile.TemporaryDirectory(dir=header.parent, prefix=f".{record}.") as folder:
    wfdb.wrsamp(record, fs=signal.sample_rate, units=["adu"] * signal.channels,
                sig_name=[f"ch{i}" for i in range(signal.channels)], d_signal=signal.samples.astype(np.int64),
                fmt=["16"] * signal.channels, adc_gain=[1.0] * signal.channels, baseline=[0] * signal.channels,
                write_dir=folder)
    for name in (header, data):  # renamed within one file system: each appears whole or not at all
      os.replace(Path(folder) / name.name, name)
  return [header, data]

