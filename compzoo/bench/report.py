"""Benchmark reports: results.json (one record per codec and image), a Markdown table, RD plots."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from compzoo.codecs.base import parse_codec_name

_COLUMNS = ("bpp", "bpsp", "psnr", "ms_ssim", "encode_s", "decode_s")


def summarize(records) -> list[dict]:
  """Means over images for each codec, in first-seen order; ``exact`` is true only if every image was."""
  rows = {}
  for record in records:
    rows.setdefault(record.codec, []).append(record)
  summary = []
  for codec, group in rows.items():
    row = {"codec": codec, "images": len(group), "exact": all(r.exact for r in group)}
    for column in _COLUMNS:
      values = [getattr(r, column) for r in group]
      row[column] = None if any(v is None for v in values) else float(np.mean(values))
    summary.append(row)
  return summary


def markdown_table(summary) -> str:
  header = "| codec | images | bpp | bpsp | PSNR (dB) | MS-SSIM | exact | encode s | decode s |"
  lines = [header, "|" + "---|" * 9]
  for row in summary:
    cells = [row["codec"], str(row["images"]), _fmt(row["bpp"], 4), _fmt(row["bpsp"], 4),
             "inf" if row["exact"] else _fmt(row["psnr"], 2), _fmt(row["ms_ssim"], 4),
             "yes" if row["exact"] else "no", _fmt(row["encode_s"], 3), _fmt(row["decode_s"], 3)]
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines)


def write_reports(records, out_dir) -> dict[str, Path]:
  out = Path(out_dir)
  out.mkdir(parents=True, exist_ok=True)
  paths = {"json": out / "results.json", "markdown": out / "summary.md"}
  paths["json"].write_text(json.dumps([dataclasses.asdict(r) for r in records], indent=1) + "\n")
  summary = summarize(records)
  paths["markdown"].write_text(markdown_table(summary) + "\n")
  lossy = [row for row in summary if not row["exact"] and row["psnr"] is not None]
  if lossy:
    paths.update(_rd_plots(lossy, out))
  return paths


def _rd_plots(rows, out: Path) -> dict[str, Path]:
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  families = {}
  for row in rows:
    families.setdefault(parse_codec_name(row["codec"])[0], []).append(row)
  paths = {}
  for metric, label in (("psnr", "PSNR (dB)"), ("ms_ssim", "MS-SSIM")):
    curves = {family: sorted((r["bpp"], r[metric]) for r in group if r[metric] is not None)
              for family, group in families.items()}
    curves = {family: points for family, points in curves.items() if points}
    if not curves:
      continue
    figure, axes = plt.subplots(figsize=(6, 4.5))
    for family, points in curves.items():
      axes.plot(*zip(*points), marker="o", label=family)
    axes.set(xlabel="bits per pixel", ylabel=label, title=f"Rate-distortion: {label}")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    paths[f"rd_{metric}"] = out / f"rd_{metric}.png"
    figure.savefig(paths[f"rd_{metric}"], dpi=120)
    plt.close(figure)
  return paths


def _fmt(value, digits):
  return "n/a" if value is None else f"{value:.{digits}f}"
