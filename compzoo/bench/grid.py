"""Pictures beside the numbers: side-by-side crops of each original and of every codec's decoding of it,
labelled with the codec and the bpp of that image, as one PNG (``compzoo bench --grid``).

Numbers can look plausible while a codec is visibly broken (the first cpm models decoded to near-grey
images at a reasonable MS-SSIM), so the bench writes the pictures it measured, not a separate rendering.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from compzoo.data.images import central_crop, save_image
from compzoo.errors import UsageError

_LABEL_HEIGHT = 34
_GAP = 4


class PictureGrid:
  """Collects ``crop``×``crop`` central crops of the chosen images: one row per image, the original
  first, then each codec in the order the bench ran them. ``rows``: the first N images, or their names."""

  def __init__(self, images: dict[str, np.ndarray], rows: int | list[str] = 2, crop: int = 192):
    names = list(images)[:rows] if isinstance(rows, int) else list(rows)
    if isinstance(rows, int) and rows < 1 or not names or crop < 8:
      raise UsageError(f"a picture grid needs at least one image and crop >= 8, got rows={rows}, crop={crop}")
    missing = [name for name in names if name not in images]
    if missing:
      raise UsageError(f"--grid names {missing[0]!r}, which is not among the benchmark's images")
    self.crop = crop
    self._rows = {name: [(f"original\n{name}", central_crop(images[name], crop))] for name in names}

  def add(self, record, decoded: np.ndarray) -> None:
    """A bench record and its decoded image (``run_bench``'s ``on_decoded``)."""
    if record.image in self._rows:
      label = "exact" if record.exact else f"{record.bpp:.3f} bpp"
      self._rows[record.image].append((f"{record.codec}\n{label}", central_crop(decoded, self.crop)))

  def render(self) -> np.ndarray:
    """H×W×3 uint8: tiles with their labels above them, on white."""
    columns = max(len(tiles) for tiles in self._rows.values())
    tile_h, tile_w = (max(t.shape[i] for tiles in self._rows.values() for _, t in tiles) for i in (0, 1))
    cell_h, cell_w = tile_h + _LABEL_HEIGHT + _GAP, tile_w + _GAP
    canvas = Image.new("RGB", (columns * cell_w + _GAP, len(self._rows) * cell_h + _GAP), "white")
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=12)
    for row, tiles in enumerate(self._rows.values()):
      for column, (label, tile) in enumerate(tiles):
        x, y = _GAP + column * cell_w, _GAP + row * cell_h
        draw.multiline_text((x, y), label, fill="black", font=font, spacing=2)
        canvas.paste(Image.fromarray(tile), (x, y + _LABEL_HEIGHT))
    return np.asarray(canvas)

  def write(self, path) -> Path:
    path = Path(path)
    save_image(path, self.render())
    return path
