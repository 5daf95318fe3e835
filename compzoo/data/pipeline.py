"""Training data: where images come from (a local folder, a TFDS dataset, the embedded photos) and the
grain pipeline that turns them into batches of random crops.

Batch ``i`` of a run is a pure function of (seed, i): the pipeline is a grain ``MapDataset`` indexed by
step, so a resumed run reads exactly the batches an uninterrupted one would have read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Sequence

import grain
import ml_collections
import numpy as np

from compzoo.data.images import embedded_images
from compzoo.errors import UsageError

SOURCES = ("folder", "tfds", "embedded")


class _ArraySource(Sequence):
  """A random-access source over images held in memory (the embedded photos, tests)."""

  def __init__(self, images: Sequence[np.ndarray]):
    self._images = list(images)

  def __len__(self):
    return len(self._images)

  def __getitem__(self, index):
    return {"image": self._images[index]}


def image_source(data: ml_collections.ConfigDict, split: str):
  """A random-access source of {'image': uint8 HxWx3} records for ``split``.

  data.source: 'folder' (data.path, data.downscale; cached as TFDS array_record under data.data_dir),
  'tfds' (data.name, a prepared TFDS dataset in data.data_dir, e.g. 'div2k' or 'clic'), or 'embedded'.
  """
  if data.source == "embedded":
    images = list(embedded_images().values())
    # Embedded photos have no splits: evaluation uses the last one, training the others.
    return _ArraySource(images[-1:] if split != "train" else images[:-1])
  if data.source == "folder":
    from compzoo.data.folder_dataset import prepare_folder  # imports tfds, slow; only needed here
    splits = prepare_folder(data.path, _data_dir(data), downscale=data.get("downscale", 1))
    if split not in splits:
      raise UsageError(f"folder {data.path} has no split {split!r}; it has {', '.join(splits)}")
    return splits[split]
  if data.source == "tfds":
    import tensorflow_datasets as tfds
    try:
      return tfds.data_source(data.name, split=split, data_dir=_data_dir(data))
    except Exception as e:  # tfds raises many kinds for missing or unprepared data sets
      raise UsageError(f"cannot open TFDS dataset {data.name!r} split {split!r} in {_data_dir(data)}: {e}; "
                       "prepare it first (tfds build --file_format=array_record) where the internet is reachable") from None
  raise UsageError(f"unknown data source {data.source!r}; use one of {', '.join(SOURCES)}")


def _data_dir(data) -> str:
  return str(Path(data.get("data_dir", ".data/tfds")).expanduser())


class RandomCropFlip(grain.transforms.RandomMap):
  """A random crop of ``size`` (edge-padded first if the image is smaller) and a random horizontal flip."""

  def __init__(self, size: int):
    self.size = size

  def random_map(self, record, rng: np.random.Generator):
    return random_crop_flip(np.asarray(record["image"]), self.size, rng)


def random_crop_flip(image: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
  image = _pad_to_at_least(image, size)
  top = rng.integers(0, image.shape[0] - size + 1)
  left = rng.integers(0, image.shape[1] - size + 1)
  crop = image[top:top + size, left:left + size]
  return crop[:, ::-1] if rng.random() < 0.5 else crop


def center_crop(image: np.ndarray, size: int) -> np.ndarray:
  image = _pad_to_at_least(image, size)
  top, left = (image.shape[0] - size) // 2, (image.shape[1] - size) // 2
  return image[top:top + size, left:left + size]


def _pad_to_at_least(image, size):
  pad_h, pad_w = max(size - image.shape[0], 0), max(size - image.shape[1], 0)
  if pad_h or pad_w:
    image = np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
  return image


def train_batches(source, crop: int, batch_size: int, seed: int, start_step: int = 0,
                  num_threads: int = 2) -> Iterator[np.ndarray]:
  """Endless uint8 batches (batch_size, crop, crop, 3), starting at batch ``start_step``."""
  if len(source) == 0:
    raise UsageError("the training split has no images")
  dataset = (grain.MapDataset.source(source).seed(seed).shuffle().repeat(None)
             .random_map(RandomCropFlip(crop)).batch(batch_size, drop_remainder=True))
  dataset = dataset.slice(slice(start_step, None))
  options = grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=4)
  return iter(dataset.to_iter_dataset(read_options=options))


def eval_batch(source, crop: int, count: int) -> np.ndarray:
  """A fixed batch of center crops from the first ``count`` images (for logged metrics and pictures)."""
  count = min(count, len(source))
  return np.stack([center_crop(np.asarray(source[i]["image"]), crop) for i in range(count)])
