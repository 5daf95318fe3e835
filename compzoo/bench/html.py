"""One self-contained HTML file per benchmark (report.html): the tables of summary.md, the RD plots and the
picture grid, the images embedded as data URIs, so the report can be mailed or opened from anywhere.

Built from what ``compzoo bench`` already wrote (summary.md and the PNGs), so it can never show other
numbers than the Markdown report. experiments/screenshot_report.py renders it in a headless browser.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

_STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 14px; }
th, td { border: 1px solid #bbb; padding: 3px 8px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #eee; }
img { max-width: 100%; border: 1px solid #ddd; margin: 0.5em 0; }
.plots img { max-width: 48%; }
.grid { overflow-x: auto; }
.grid img { max-width: none; }
p.note { color: #555; font-size: 13px; }
"""


def markdown_to_html(text: str) -> str:
  """The subset summary.md uses: pipe tables (header, rule, rows), '#' headings, and paragraphs."""
  blocks, table = [], []

  def flush():
    if table:
      header, rows = table[0], table[2:]  # table[1] is the |---| rule
      cells = lambda row, tag: "".join(f"<{tag}>{html.escape(c.strip())}</{tag}>" for c in row.strip("|").split("|"))
      body = "".join(f"<tr>{cells(row, 'td')}</tr>" for row in rows)
      blocks.append(f"<table><thead><tr>{cells(header, 'th')}</tr></thead><tbody>{body}</tbody></table>")
      table.clear()

  for line in text.splitlines():
    line = line.rstrip()
    if line.startswith("|"):
      table.append(line)
      continue
    flush()
    if line.startswith("#"):
      level = min(len(line) - len(line.lstrip("#")) + 1, 4)
      blocks.append(f"<h{level}>{html.escape(line.lstrip('#').strip())}</h{level}>")
    elif line:
      blocks.append(f"<p>{html.escape(line)}</p>")
  flush()
  return "\n".join(blocks)


def _image(path: Path, alt: str) -> str:
  data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
  return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def write_html(out_dir, paths: dict[str, Path], title: str, note: str = "") -> Path:
  """report.html in ``out_dir`` from summary.md and the plot and grid PNGs among ``paths``."""
  out = Path(out_dir)
  plots = [_image(paths[key], key.replace("_", " ")) for key in sorted(paths) if key.startswith("rd_")]
  grid = _image(paths["grid"], "original and decoded crops, each labelled with its codec and bpp") \
      if "grid" in paths else ""
  parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
           f"<style>{_STYLE}</style></head><body>", f"<h1>{html.escape(title)}</h1>"]
  if note:
    parts.append(f'<p class="note">{html.escape(note)}</p>')
  parts.append(markdown_to_html(Path(paths["markdown"]).read_text()))
  if plots:
    parts.append("<h2>Rate-distortion curves</h2><div class='plots'>" + "".join(plots) + "</div>")
  if grid:
    parts.append("<h2>Decoded crops</h2><div class='grid'>" + grid + "</div>")
  parts.append("</body></html>")
  path = out / "report.html"
  path.write_text("\n".join(parts))
  return path
