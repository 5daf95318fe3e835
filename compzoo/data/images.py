"""Reading and writing 8-bit RGB images and label maps, and the embedded default set (scikit-image's
bundled photos). Files are written atomically: a temporary file in the same folder, renamed on success,
so a failed or interrupted write never leaves a partial file or touches an existing one."""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from compzoo.errors import CompzooError, UsageError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".ppm", ".bmp", ".tif", ".tiff", ".webp")
EMBEDDED = ("astronaut", "coffee", "chelsea", "motorcycle_left", "motorcycle_right")
# CamVid's label-map classes by id (../shared/data/camvid/README.md); the last, 11, is void (unlabelled):
# segmenters predict the CAMVID_VOID classes before it, and their losses and scores ignore it.
CAMVID_CLASSES = ("sky", "building", "pole", "road", "pavement", "tree", "signsymbol", "fence", "car", "pedestrian",
                  "bicyclist", "void")
CAMVID_VOID = CAMVID_CLASSES.index("void")


def load_image(path) -> np.ndarray:
  """-> uint8 HxWx3. Grey or palette images are expanded; anything with alpha or >8 bits is refused,
  since coding it as RGB would silently lose information."""

  def rgb(image, path):
    if image.mode not in ("L", "P", "RGB"):
      raise UsageError(f"{path}: image mode {image.mode!r} is not 8-bit RGB or grey; compzoo codes RGB only")
    if image.mode == "P" and "transparency" in image.info:
      raise UsageError(f"{path}: palette image with transparency; compzoo codes RGB only")
    return np.asarray(image.convert("RGB"))

  return _read(path, "image", rgb)


def load_label_map(path) -> np.ndarray:
  """-> uint8 H×W class ids from an 8-bit grey (or palette-index) PNG; colour label maps are refused,
  since their colours would need a palette to become ids."""

  def ids(image, path):
    if image.mode not in ("L", "P"):
      raise UsageError(f"{path}: a label map must be an 8-bit grey image of class ids, got mode {image.mode!r}")
    return np.array(image)

  return _read(path, "label map", ids)


def load_labelled_image(image_path, label_path) -> tuple[np.ndarray, np.ndarray]:
  """An image and its label map, which must exist and have the image's height and width."""
  label_path = Path(label_path)
  if not label_path.is_file():
    raise UsageError(f"{image_path} has no label map {label_path}")
  image, label_map = load_image(image_path), load_label_map(label_path)
  if label_map.shape != image.shape[:2]:
    raise UsageError(f"{label_path} is {label_map.shape}, its image {image.shape[:2]}")
  return image, label_map


def _read(path, what: str, convert) -> np.ndarray:
  """Opens an image file and returns ``convert(image, path)``; unreadable files are usage errors."""
  path = Path(path)
  if not path.is_file():
    raise UsageError(f"no such {what} file: {path}")
  try:
    with Image.open(path) as image:
      image.load()
      return convert(image, path)
  except UsageError:
    raise
  except (OSError, ValueError, Image.DecompressionBombError) as e:
    raise UsageError(f"cannot read {what} {path}: {e}") from None


def png_bytes(image: np.ndarray) -> bytes:
  buffer = io.BytesIO()
  Image.fromarray(np.asarray(image, np.uint8)).save(buffer, format="PNG")
  return buffer.getvalue()


def check_png_path(path) -> Path:
  """Decoded images are written as PNG: refuses another suffix (before any decoding work)."""
  path = Path(path)
  if path.suffix.lower() != ".png":
    raise UsageError(f"decoded images are written as PNG; got {path.name!r}")
  return path


def save_image(path, image: np.ndarray) -> None:
  write_atomically(check_png_path(path), png_bytes(image))


def write_atomically(path, payload: bytes) -> None:
  """Writes ``payload`` to a temporary file beside ``path``, then renames it over ``path``."""
  path = Path(path)
  if not path.parent.is_dir():
    raise UsageError(f"output folder does not exist: {path.parent}")
  try:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
  except OSError as e:
    raise CompzooError(f"cannot write {path}: {e}") from None
  try:
    with os.fdopen(handle, "wb") as f:
      f.write(payload)
      f.flush()
      os.fsync(f.fileno())
    os.replace(temporary, path)
  except OSError as e:
    Path(temporary).unlink(missing_ok=True)
    raise CompzooError(f"cannot write {path}: {e}") from None
  except BaseException:
    Path(temporary).unlink(missing_ok=True)
    raise


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
  """'embedded' (the bundled photos) or a folder's images by file name; ``limit``: the first N (0: all);
  ``crop``: the central crop x crop pixels of each (0: whole images), e.g. to time slow per-pixel codecs."""
  if crop < 0 or limit < 0:
    raise UsageError(f"crop and limit must be >= 0, got {crop} and {limit}")
  if where == "embedded":
    images = dict(list(embedded_images().items())[: limit or None])
  else:
    images = {path.name: load_image(path) for path in list_images(where)[: limit or None]}
  if crop:
    images = {name: central_crop(image, crop) for name, image in images.items()}
  return images


def label_map_set(folder: str, images: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
  """The label map of each image, by file name, from ``folder``; cropped as the image was (the central
  crop of the same size) where the image is smaller than its map."""
  maps = {}
  for name, image in images.items():
    path = Path(folder) / name
    if not path.is_file():
      raise UsageError(f"no label map {path} for image {name}")
    labels = load_label_map(path)
    if labels.shape != image.shape[:2]:
      labels = central_crop(labels[..., None], max(image.shape[:2]))[..., 0]
      if labels.shape != image.shape[:2]:
        raise UsageError(f"label map {path} is {labels.shape[1]}×{labels.shape[0]}, its image "
                         f"{image.shape[1]}×{image.shape[0]}")
    maps[name] = labels
  return maps


def central_crop(image: np.ndarray, size: int) -> np.ndarray:
  """The central size×size part (the whole side where the image is smaller)."""
  top, left = max(image.shape[0] - size, 0) // 2, max(image.shape[1] - size, 0) // 2
  return np.ascontiguousarray(image[top:top + size, left:left + size])
