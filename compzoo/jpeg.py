"""Baseline JPEG as the zoo writes it, in one place: the classic ``jpeg`` codec, the refinement decoder's
bitstream (``jpeg-refine`` files hold exactly these bytes) and the training pipeline's degraded copies all
go through these functions, so a network trained on them sees the pixels the codec will hand it.

libjpeg (imagecodecs' ``jpeg8``) at quality Q, 4:2:0 chroma subsampling, optimized Huffman tables. The
decoder's integer inverse DCT (libjpeg's default) gives the same pixels on every machine.
"""

from __future__ import annotations

import io

import imagecodecs
import numpy as np
from PIL import Image

from compzoo import image_headers
from compzoo.errors import BitstreamError

BLOCK = 8  # the luma DCT block: patch grids that refine JPEG align with it


def encode(image: np.ndarray, quality: int) -> bytes:
  return bytes(imagecodecs.jpeg8_encode(np.ascontiguousarray(image), level=int(quality), optimize=True))


def decode(data: bytes, shape: tuple[int, ...] | None = None, codec: str = "jpeg") -> np.ndarray:
  """libjpeg's pixels (H×W×3 uint8). With ``shape``, the frame header's size is checked first, so a stream
  that claims another (perhaps huge) image is refused before libjpeg allocates it."""
  if shape is not None:
    image_headers.check_size("jpeg", data, shape, codec)
  image = np.asarray(imagecodecs.jpeg8_decode(data))
  if image.ndim == 2:  # a grey JPEG (not one the zoo writes, but a valid file)
    image = np.repeat(image[..., None], 3, axis=2)
  return image


def quantization_tables(data: bytes) -> np.ndarray:
  """The file's luma and chroma quantization tables as a 2×64 float array (natural order is irrelevant
  here: callers summarise them). A file with one table (grey) repeats it."""
  try:
    tables = Image.open(io.BytesIO(data)).quantization
  except Exception as e:  # Pillow raises many kinds on bytes that are not a JPEG
    raise BitstreamError(f"not a JPEG stream: {type(e).__name__}: {e}") from None
  if not tables:
    raise BitstreamError("JPEG stream has no quantization tables")
  luma = np.asarray(tables[min(tables)], np.float32)
  chroma = np.asarray(tables.get(1, tables[min(tables)]), np.float32)
  return np.stack([luma, chroma])


def quality_features(tables: np.ndarray) -> np.ndarray:
  """Two numbers a network can read to know how coarse the quantization was: log2 of the mean luma and
  chroma step, centred (about -1.3 at quality 95, +1.1 at quality 10). Read from the tables, not from
  Q, so any baseline JPEG qualifies, whichever encoder wrote it."""
  return ((np.log2(np.mean(tables, axis=-1)) - 5.0) / 2.0).astype(np.float32)


def degrade(image: np.ndarray, quality: int) -> tuple[np.ndarray, np.ndarray]:
  """(decoded pixels, quality features) of ``image`` through JPEG at ``quality``."""
  data = encode(image, quality)
  return decode(data), quality_features(quantization_tables(data))
