"""Runs signal codecs over a set of recordings: bits per sample, PRD, SNR, exactness and time per record.

Bits per sample are reported two ways: the mean of each recording's (what a per-file figure means) and the
total bits over the total samples (what a store of many recordings pays); they differ when lengths do.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Mapping

import numpy as np
from tqdm import tqdm

from compzoo import signals, zoo
from compzoo.data import ecg
from compzoo.data.signals import load_signal
from compzoo.errors import UsageError


@dataclasses.dataclass
class SignalRecord:
  codec: str
  signal: str
  bytes: int
  samples: int  # samples × channels
  bits_per_sample: float
  prd: float  # percent; 0 when exact
  snr_db: float | None  # None when exact (infinite)
  exact: bool
  encode_s: float
  decode_s: float


def signal_set(where, limit: int = 0, fold: int | None = None) -> dict[str, signals.Signal]:
  """Recordings to benchmark, by name: a folder's ``.npy`` files and WFDB records (a record's ``.mat``
  signal file is read through its header), or the packed CinC 2017 ``dev.npz`` (``fold``: one fold only).
  ``limit``: the first N (0: all)."""
  where = Path(where)
  if where.suffix == ".npz":
    recordings = ecg.cinc2017(where)
    if fold is not None:
      if fold not in set(recordings.folds.tolist()):
        raise UsageError(f"{where} has no fold {fold} (folds: {sorted(set(recordings.folds.tolist()))})")
      recordings = recordings.fold(fold)
    found = {name: signals.as_signal(x, ecg.RATE) for name, x in zip(recordings.names, recordings.signals)}
  elif where.is_dir():
    if fold is not None:
      raise UsageError("--fold selects a fold of the packed dev.npz; a folder has none")
    paths = sorted(p for p in where.iterdir()
                   if p.suffix in (".npy", ".hea") or (p.suffix == ".mat" and not p.with_suffix(".hea").is_file()))
    stems = [path.stem for path in paths]
    twice = sorted({stem for stem in stems if stems.count(stem) > 1})
    if twice:
      raise UsageError(f"{where} holds two signals named {twice[0]} (e.g. {twice[0]}.npy and {twice[0]}.hea)")
    found = {path.stem: load_signal(path) for path in paths}
  else:
    raise UsageError(f"no such folder or .npz: {where}")
  if not found:
    raise UsageError(f"no signals (.npy, .hea, .mat) in {where}")
  names = sorted(found)[:limit] if limit else sorted(found)
  return {name: found[name] for name in names}


def measure(spec: str, codec, name: str, signal: signals.Signal) -> tuple[SignalRecord, signals.Signal]:
  start = time.perf_counter()
  data = codec.compress(signal)
  encode_s = time.perf_counter() - start
  start = time.perf_counter()
  decoded = codec.decompress(data)
  decode_s = time.perf_counter() - start
  exact = decoded == signal
  snr = None if exact else signals.snr_db(signal.samples, decoded.samples)
  record = SignalRecord(spec, name, len(data), signal.samples.size, signals.bits_per_sample(len(data), signal),
                        0.0 if exact else signals.prd(signal.samples, decoded.samples), snr, exact, encode_s, decode_s)
  return record, decoded


def run_signal_bench(specs: list, recordings: Mapping[str, signals.Signal], progress: bool = True
                     ) -> list[SignalRecord]:
  """Builds every codec first (a bad or image-only name fails before any work), then codes every recording.
  A spec is a zoo name or an already built codec (``-m learned --weights DIR``)."""
  codecs = [(spec, zoo.make_codec(spec)) if isinstance(spec, str) else (spec.name, spec) for spec in specs]
  for spec, codec in codecs:
    if getattr(codec, "modality", "image") != "signal":
      raise UsageError(f"{spec} codes images, not signals")
  records = []
  with tqdm(total=len(codecs) * len(recordings), disable=None if progress else True, unit="signal") as bar:
    for spec, codec in codecs:
      for name, signal in recordings.items():
        bar.set_description(f"{spec} {name}")
        records.append(measure(spec, codec, name, signal)[0])
        bar.update()
  return records


def summarize(records) -> list[dict]:
  rows = {}
  for record in records:
    rows.setdefault(record.codec, []).append(record)
  summary = []
  for codec, group in rows.items():
    snrs = [r.snr_db for r in group if r.snr_db is not None]
    summary.append({
        "codec": codec, "signals": len(group), "exact": all(r.exact for r in group),
        "bits_per_sample": float(np.mean([r.bits_per_sample for r in group])),
        "pooled_bits_per_sample": 8.0 * sum(r.bytes for r in group) / sum(r.samples for r in group),
        "prd": float(np.mean([r.prd for r in group])),
        "snr_db": float(np.mean(snrs)) if len(snrs) == len(group) else None,
        "encode_s": float(np.sum([r.encode_s for r in group])), "decode_s": float(np.sum([r.decode_s for r in group]))})
  return summary


def markdown_table(summary) -> str:
  lines = ["| codec | signals | bits/sample (mean) | bits/sample (pooled) | PRD % | SNR dB | exact | encode s | decode s |",
           "|" + "---|" * 9]
  for row in summary:
    snr = "inf" if row["exact"] else ("-" if row["snr_db"] is None else f"{row['snr_db']:.2f}")
    lines.append(f"| {row['codec']} | {row['signals']} | {row['bits_per_sample']:.4f} | "
                 f"{row['pooled_bits_per_sample']:.4f} | {row['prd']:.2f} | {snr} | {'yes' if row['exact'] else 'no'} | "
                 f"{row['encode_s']:.2f} | {row['decode_s']:.2f} |")
  return "\n".join(lines)


def write_reports(records, out) -> dict[str, Path]:
  out = Path(out)
  out.mkdir(parents=True, exist_ok=True)
  summary = summarize(records)
  paths = {"json": out / "results.json", "markdown": out / "summary.md"}
  paths["json"].write_text(json.dumps({"summary": summary, "records": [dataclasses.asdict(r) for r in records]},
                                      indent=1))
  paths["markdown"].write_text(markdown_table(summary) + "\n")
  return paths
