"""A TFDS builder for a local folder of images, stored as array_record and read with no TensorFlow.

``prepare_folder(folder, data_dir)`` turns ``folder`` (with ``train/``, ``val/``, ``test/`` subfolders,
or flat: everything is ``train``) into a TFDS dataset and returns its splits as random-access sources.
Images are stored as PNG after an optional integer-factor box downscale (``downscale``): downscaling
high-quality JPEGs removes their compression artefacts, which a lossless model would otherwise learn
(L3C's authors did the same). The dataset's config name is derived from the folder and the options, so two
folders or two preprocessings never share a cache, and a second run reuses the prepared records.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from compzoo.data.images import list_images, load_image
from compzoo.errors import UsageError

_SPLITS = ("train", "val", "test")


class FolderConfig(tfds.core.BuilderConfig):
  def __init__(self, *, folder: Path, downscale: int, **kwargs):
    super().__init__(**kwargs)
    self.folder = folder
    self.downscale = downscale


class ImageFolderDataset(tfds.core.GeneratorBasedBuilder):
  """Images of a local folder; one split per subfolder train/val/test (or one 'train' split)."""

  VERSION = tfds.core.Version("1.0.0")
  BUILDER_CONFIGS = []  # configs are made per folder by ``prepare_folder``

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(None, None, 3), encoding_format="png"),
            "name": tfds.features.Text(),
        }),
        description=f"Images of {self.builder_config.folder}, downscaled by {self.builder_config.downscale}.",
    )

  def _split_generators(self, dl_manager):
    folder = Path(self.builder_config.folder)
    present = [s for s in _SPLITS if (folder / s).is_dir()]
    if present:
      return {split: self._generate_examples(folder / split) for split in present}
    return {"train": self._generate_examples(folder)}

  def _generate_examples(self, folder: Path):
    for path in list_images(folder):
      image = downscale_image(load_image(path), self.builder_config.downscale)
      buffer = io.BytesIO()
      Image.fromarray(image).save(buffer, format="PNG", compress_level=1)
      yield path.name, {"image": buffer.getvalue(), "name": path.name}


def downscale_image(image: np.ndarray, factor: int) -> np.ndarray:
  """Box-filter downscale by an integer factor (area average, rounded), cropping the remainder."""
  if factor == 1:
    return image
  h, w = image.shape[0] // factor * factor, image.shape[1] // factor * factor
  if h == 0 or w == 0:
    raise UsageError(f"image {image.shape[:2]} is smaller than the downscale factor {factor}")
  blocks = image[:h, :w].reshape(h // factor, factor, w // factor, factor, 3).astype(np.float32)
  return np.round(blocks.mean(axis=(1, 3))).astype(np.uint8)


def prepare_folder(folder, data_dir, downscale: int = 1) -> dict[str, object]:
  """Builds (once) and returns {split: random-access source of {'image': uint8 HxWx3, 'name': str}}."""
  folder = Path(folder).resolve()
  if not folder.is_dir():
    raise UsageError(f"no such image folder: {folder}")
  if downscale < 1:
    raise UsageError(f"downscale must be a positive integer, got {downscale}")
  digest = hashlib.sha1(f"{folder}|{downscale}".encode()).hexdigest()[:10]
  config = FolderConfig(name=f"{folder.name.lower()}_x{downscale}_{digest}", folder=folder, downscale=downscale)
  builder = ImageFolderDataset(config=config, data_dir=str(data_dir), file_format="array_record")
  tfds.display_progress_bar(False)  # one bar per split and per shuffle pass: noise in training logs
  builder.download_and_prepare()
  return {split: builder.as_data_source(split=split) for split in builder.info.splits}
