"""Benchmark reports: results.json (one record per codec and image), a Markdown table, RD plots."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from compzoo import zoo
from compzoo.bench.bdrate import bd_rate, ms_ssim_db

_COLUMNS = ("bpp", "bpsp", "psnr", "ms_ssim", "colour_psnr", "encode_s", "decode_s")


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
  """One row per codec; 'colour PSNR' is the PSNR of the 8×8 block means (colour and brightness)."""
  header = "| codec | images | bpp | bpsp | PSNR (dB) | MS-SSIM | colour PSNR (dB) | exact | encode s | decode s |"
  lines = [header, "|" + "---|" * 10]
  for row in summary:
    cells = [row["codec"], str(row["images"]), _fmt(row["bpp"], 4), _fmt(row["bpsp"], 4),
             "inf" if row["exact"] else _fmt(row["psnr"], 2), _fmt(row["ms_ssim"], 4),
             "inf" if row["exact"] else _fmt(row["colour_psnr"], 2),
             "yes" if row["exact"] else "no", _fmt(row["encode_s"], 3), _fmt(row["decode_s"], 3)]
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines)


def parts_table(records) -> str:
  """Where each learned codec's bits go: mean bpsp per coded part (L3C: per scale) over its images; empty
  when no record names parts."""
  rows = {}
  for record in records:
    if record.parts:
      rows.setdefault(record.codec, []).append(record.parts)
  if not rows:
    return ""
  lines = ["Where the bits go (bpsp per coded part, mean over images)", "", "| codec | part | bpsp | share |",
           "|---|---|---|---|"]
  for codec, group in rows.items():
    names = list(dict.fromkeys(name for parts in group for name in parts))
    means = {name: float(np.mean([parts.get(name, 0.0) for parts in group])) for name in names}
    total = sum(means.values()) or 1.0
    lines += [f"| {codec} | {name} | {value:.4f} | {100 * value / total:.1f}% |" for name, value in means.items()]
  return "\n".join(lines)


def curves(summary) -> dict[str, list[dict]]:
  """Lossy summary rows grouped into RD curves: a zoo entry's sweep, or a family of entries (cpm-low,
  cpm-mid, cpm-high make 'cpm'), with the parameters it does not sweep fixed ('jpeg-refine:rule=uoro');
  codecs outside the zoo (a workdir) are their own curve."""
  grouped = {}
  for row in summary:
    if row["exact"] or row["psnr"] is None:
      continue
    grouped.setdefault(zoo.curve_name(row["codec"]), []).append(row)
  return grouped


def bd_rate_table(summary, anchor: str) -> str:
  """BD-rate of every curve against the ``anchor`` curve, in PSNR and in MS-SSIM (dB)."""
  grouped = curves(summary)
  if anchor not in grouped:
    return f"no BD-rates: the anchor {anchor!r} has no lossy results here"
  lines = [f"BD-rate against {anchor} (negative: fewer bits at equal quality)", "",
           "| codec | BD-rate PSNR | BD-rate MS-SSIM (dB) |", "|---|---|---|"]
  for name, rows in grouped.items():
    if name == anchor:
      continue
    cells = []
    for metric, convert in (("psnr", float), ("ms_ssim", ms_ssim_db)):
      points = lambda group: [(r["bpp"], convert(r[metric])) for r in group if r[metric] is not None]
      value = bd_rate(points(grouped[anchor]), points(rows))
      cells.append("n/a" if value is None else f"{value:+.1f}%")
    lines.append(f"| {name} | " + " | ".join(cells) + " |")
  return "\n".join(lines)


def same_rate_table(summary, anchor: str) -> str:
  """Every lossy row against the ``anchor`` curve at the row's own bpp (the anchor interpolated linearly
  in log bpp): PSNR, MS-SSIM and colour PSNR differences. Rows outside the anchor's range say so."""
  grouped = curves(summary)
  if anchor not in grouped:
    return f"no same-rate comparison: the anchor {anchor!r} has no lossy results here"
  reference = sorted(grouped[anchor], key=lambda r: r["bpp"])
  lines = [f"Against {anchor} at the same bpp (positive: better than {anchor})", "",
           "| codec | bpp | PSNR (dB) | Δ PSNR | MS-SSIM | Δ MS-SSIM | colour PSNR (dB) | Δ colour PSNR |",
           "|" + "---|" * 8]
  for name, rows in grouped.items():
    if name == anchor:
      continue
    for row in rows:
      cells = [row["codec"], _fmt(row["bpp"], 4)]
      for metric, digits in (("psnr", 2), ("ms_ssim", 4), ("colour_psnr", 2)):
        rates = [r["bpp"] for r in reference if r[metric] is not None]
        values = [r[metric] for r in reference if r[metric] is not None]
        inside = row[metric] is not None and len(rates) > 1 and rates[0] <= row["bpp"] <= rates[-1]
        delta = row[metric] - np.interp(np.log(row["bpp"]), np.log(rates), values) if inside else None
        cells += [_fmt(row[metric], digits), "out of range" if delta is None else f"{delta:+.{digits}f}"]
      lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines)


def write_reports(records, out_dir, anchor: str | None = None) -> dict[str, Path]:
  """results.json, summary.md (with BD-rates against ``anchor`` when given: a curve name, or several
  joined by commas) and RD plots."""
  out = Path(out_dir)
  out.mkdir(parents=True, exist_ok=True)
  paths = {"json": out / "results.json", "markdown": out / "summary.md"}
  paths["json"].write_text(json.dumps([dataclasses.asdict(r) for r in records], indent=1) + "\n")
  summary = summarize(records)
  text = markdown_table(summary)
  if parts_table(records):
    text += "\n\n" + parts_table(records)
  for name in filter(None, (anchor or "").split(",")):
    text += "\n\n" + bd_rate_table(summary, name) + "\n\n" + same_rate_table(summary, name)
  paths["markdown"].write_text(text + "\n")
  grouped = curves(summary)
  if grouped:
    paths.update(_rd_plots(grouped, out))
  return paths


def _rd_plots(families, out: Path) -> dict[str, Path]:
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

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
