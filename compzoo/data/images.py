"""Reading and writing 8-bit RGB images, and the embedded default set (scikit-image's bundled photos)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from compzoo.errors import UsageError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".ppm", ".bmp", ".tif", ".tiff", ".webp")
EMBEDDED = ("astronaut", "coffee", "chelsea", "motorcycle_left", "motorcycle_right")


def load_image(path) -> np.ndarray:
  """-> uint8 HxWx3. Grey or palette images are expanded; anything with alpha or >8 bits is refused,
  since coding it as RGB would silently lose information."""
  path = Path(path)
  if not path.is_file():
    raise UsageError(f"no such image file: {path}")
  try:
    with Image.open(path) as image:
      image.load()
      mode = image.mode
      if mode in ("L", "P", "RGB"):
        if mode == "P" and "transparency" in image.info:
          raise UsageError(f"{path}: palette image with transparency; compzoo codes RGB only")
        return np.asarray(image.convert("RGB"))
  except UsageError:
    raise
  except (OSError, ValueError, Image.DecompressionBombError) as e:
    raise UsageError(f"cannot read image {path}: {e}") from None
  raise UsageError(f"{path}: image mode {mode!r} is not 8-bit RGB or grey; compzoo codes RGB only")


def save_image(path, image: np.ndarray) -> None:
  path = Path(path)
  if path.suffix.lower() != ".png":
    raise UsageError(f"decoded images are written as PNG; got {path.name!r}")
  if path.parent and not path.parent.is_dir():
    raise UsageError(f"output folder does not exist: {path.parent}")
  Image.fromarray(np.asarray(image, np.uint8)).save(path)


def list_images(folder) -> list[Path]:
  folder = Path(folder)
  if not folder.is_dir():
    raise UsageError(f"no such image folder: {folder}")
  paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
  if not paths:
    raise UsageError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
  return paths


def embedded_images() -> dict[str, np.ndarray]:
  """The default images: photos bundled with scikit-image, so the main job runs with no download."""
  import skimage.data  # imported here: it is slow to import and only this function needs it

  left, right, _ = skimage.data.stereo_motorcycle()
  images = {"astronaut": skimage.data.astronaut(), "coffee": skimage.data.coffee(),
            "chelsea": skimage.data.chelsea(), "motorcycle_left": left, "motorcycle_right": right}
  return {name: np.ascontiguousarray(images[name][..., :3], np.uint8) for name in EMBEDDED}


def image_set(where: str, limit: int = 0, crop: int = 0) -> dict[str, np.ndarray]:
  """'embedded' (the bundled photos) or a folder's images by file name; ``limit``: a folder's first N (0: all);
  ``crop``: the central crop x crop pixels of each (0: whole images), e.g. to time slow per-pixel codecs."""
  if crop < 0:
    raise UsageError(f"crop must be >= 0, got {crop}")
  images = embedded_images() if where == "embedded" else {
      path.name: load_image(path) for path in list_images(where)[: limit or None]}
  if crop:
    images = {name: _central_crop(image, crop) for name, image in images.items()}
  return images


def _central_crop(image: np.ndarray, size: int) -> np.ndarray:
  top, left = max(image.shape[0] - size, 0) // 2, max(image.shape[1] - size, 0) // 2
  return np.ascontiguousarray(image[top:top + size, left:left + size])
