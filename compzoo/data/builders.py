"""TFDS builders for local data, stored as array_record and read with no TensorFlow.

Each kind of local data becomes a TFDS dataset once, under ``data_dir``, and is then read as
random-access sources of records (``prepare(kind, path, data_dir, downscale)``):

  ``folder``          images in ``train/``, ``val/``, ``test/`` subfolders (or flat: all ``train``)
  ``paired_folders``  ``<split>/images/*`` with ``<split>/labels/*`` label maps of the same file names
                      (CamVid: ``../shared/data/camvid``) -> image + label_map
  ``class_zips``      ``<split>.zip`` archives of ``<class>/<file>`` images (CIFAR-10 as JPEGs:
                      ``../shared/data/cifar10``) -> image + label (classes in sorted order)
  ``mnist_idx``       MNIST IDX files ``t10k-{images-idx3,labels-idx1}-ubyte.gz`` (``../shared/data/mnist``
                      holds only the 10k test digits): a fixed split, 8,000 ``train`` and 2,000 ``test``
                      -> image (28×28×1) + label

Images are stored as PNG after an optional integer-factor box downscale (``downscale``; label maps take the
majority class of each block, never an interpolated id): downscaling high-quality JPEGs removes their
compression artefacts, which a lossless model would otherwise learn (L3C's authors did the same). The
config name is derived from the path and the options, so two folders or two preprocessings never share a
cache, and a second run reuses the prepared records.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import hashlib
import io
import struct
import zipfile
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from compzoo.data.images import IMAGE_SUFFIXES, list_images, load_image, load_labelled_image
from compzoo.errors import UsageError

_SPLITS = ("train", "val", "test")
MNIST_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
MNIST_TRAIN = 8000  # of the 10,000 digits, in a fixed shuffled order (seed 0): the rest is 'test'


class LocalConfig(tfds.core.BuilderConfig):
  def __init__(self, *, path: Path, downscale: int, **kwargs):
    super().__init__(**kwargs)
    self.path = path
    self.downscale = downscale


class _LocalBuilder(tfds.core.GeneratorBasedBuilder):
  VERSION = tfds.core.Version("1.0.0")
  BUILDER_CONFIGS = []  # configs are made per path by ``prepare``

  def _features(self) -> dict:
    """The record's features besides its ``name``."""
    raise NotImplementedError

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({**self._features(), "name": tfds.features.Text()}),
        description=f"{type(self).__name__} of {self.builder_config.path}, downscaled by "
                    f"{self.builder_config.downscale}.")

  def _split_generators(self, dl_manager):
    path = Path(self.builder_config.path)
    present = [s for s in _SPLITS if (path / s).is_dir()]
    if present:
      return {split: self._generate_examples(path / split) for split in present}
    return {"train": self._generate_examples(path)}


def _rgb_feature():
  return tfds.features.Image(shape=(None, None, 3), encoding_format="png")


class ImageFolderDataset(_LocalBuilder):
  """Images of a local folder; one split per subfolder train/val/test (or one 'train' split)."""

  def _features(self):
    return {"image": _rgb_feature()}

  def _generate_examples(self, folder: Path):
    for path in list_images(folder):
      yield path.name, {"image": _png(downscale_image(load_image(path), self.builder_config.downscale)),
                        "name": path.name}


class PairedFoldersDataset(_LocalBuilder):
  """Images and label maps paired by file name: ``<split>/images/`` and ``<split>/labels/``."""

  def _features(self):
    return {"image": _rgb_feature(), "label_map": tfds.features.Image(shape=(None, None, 1), encoding_format="png")}

  def _generate_examples(self, folder: Path):
    factor = self.builder_config.downscale
    for path in list_images(folder / "images"):
      image, label_map = load_labelled_image(path, folder / "labels" / path.name)
      yield path.name, {"image": _png(downscale_image(image, factor)),
                        "label_map": _png(downscale_label_map(label_map, factor)), "name": path.name}


def _zip_classes(path: Path) -> list[str]:
  classes = set()
  for archive in sorted(path.glob("*.zip")):
    with zipfile.ZipFile(archive) as z:
      classes |= {name.split("/")[0] for name in z.namelist() if "/" in name and not name.endswith("/")}
  return sorted(classes)


class ClassZipsDataset(_LocalBuilder):
  """``<split>.zip`` archives whose entries are ``<class>/<file>``; labels index the sorted class names."""

  def _features(self):
    return {"image": _rgb_feature(), "label": tfds.features.Scalar(np.int64)}

  def _split_generators(self, dl_manager):
    path = Path(self.builder_config.path)
    self._classes = _zip_classes(path)
    return {split: self._generate_examples(path / f"{split}.zip") for split in _SPLITS
            if (path / f"{split}.zip").is_file()}

  def _generate_examples(self, archive: Path):
    with zipfile.ZipFile(archive) as z:
      for name in sorted(z.namelist()):
        if name.endswith("/") or Path(name).suffix.lower() not in IMAGE_SUFFIXES:
          continue
        with Image.open(io.BytesIO(z.read(name))) as image:
          pixels = np.asarray(image.convert("RGB"))
        yield name, {"image": _png(downscale_image(pixels, self.builder_config.downscale)),
                     "label": self._classes.index(name.split("/")[0]), "name": name}


class MnistIdxDataset(_LocalBuilder):
  """MNIST's IDX files: 28×28 grey digits and their labels, split 8,000 / 2,000 in a fixed order."""

  def _features(self):
    return {"image": tfds.features.Image(shape=(28, 28, 1), encoding_format="png"),
            "label": tfds.features.Scalar(np.int64)}

  def _split_generators(self, dl_manager):
    images, labels = read_mnist(Path(self.builder_config.path))
    order = np.random.default_rng(0).permutation(len(images))
    return {"train": self._generate_examples(images, labels, order[:MNIST_TRAIN]),
            "test": self._generate_examples(images, labels, order[MNIST_TRAIN:])}

  def _generate_examples(self, images, labels, indices):
    for index in indices:
      yield int(index), {"image": _png(images[index][..., None]), "label": int(labels[index]),
                         "name": f"t10k-{index:05d}"}


def read_mnist(folder: Path) -> tuple[np.ndarray, np.ndarray]:
  """-> (N×28×28 uint8 images, N uint8 labels) from the gzipped IDX files, headers checked."""
  paths = [folder / name for name in MNIST_FILES]
  for path in paths:
    if not path.is_file():
      raise UsageError(f"no MNIST file {path}")
  try:
    with gzip.open(paths[0]) as f:
      magic, count, rows, cols = struct.unpack(">IIII", f.read(16))
      images = np.frombuffer(f.read(), np.uint8)
    with gzip.open(paths[1]) as f:
      label_magic, label_count = struct.unpack(">II", f.read(8))
      labels = np.frombuffer(f.read(), np.uint8)
  except (OSError, EOFError, struct.error) as e:
    raise UsageError(f"cannot read MNIST files in {folder}: {e}") from None
  if (magic, label_magic) != (2051, 2049) or count != label_count or images.size != count * rows * cols \
      or labels.size != count:
    raise UsageError(f"MNIST files in {folder} are not IDX image/label files of matching length")
  return images.reshape(count, rows, cols), labels


BUILDERS = {"folder": ImageFolderDataset, "paired_folders": PairedFoldersDataset,
            "class_zips": ClassZipsDataset, "mnist_idx": MnistIdxDataset}


def prepare(kind: str, path, data_dir, downscale: int = 1) -> dict[str, object]:
  """Builds (once) and returns {split: random-access source of records} for local data of ``kind``."""
  path = Path(path).resolve()
  if not path.is_dir():
    raise UsageError(f"no such data folder: {path}")
  if downscale < 1:
    raise UsageError(f"downscale must be a positive integer, got {downscale}")
  if kind == "mnist_idx" and downscale != 1:
    raise UsageError("MNIST digits are not downscaled")
  digest = hashlib.sha1(f"{path}|{downscale}".encode()).hexdigest()[:10]
  config = LocalConfig(name=f"{path.name.lower()}_x{downscale}_{digest}", path=path, downscale=downscale)
  tfds.display_progress_bar(False)  # one bar per split and per shuffle pass: noise in training logs
  with _build_lock(Path(data_dir) / f"{config.name}.lock"):  # made inside: a builder reads what exists
    builder = BUILDERS[kind](config=config, data_dir=str(data_dir), file_format="array_record")
    builder.download_and_prepare()
  if not builder.info.splits:
    raise UsageError(f"{path} holds no {kind} data")
  return {split: builder.as_data_source(split=split) for split in builder.info.splits}


@contextlib.contextmanager
def _build_lock(path: Path):
  """Holds an exclusive lock on ``path`` while one process builds a dataset: two jobs started together
  on the same data (two training runs, or the processes of one) would otherwise both build it, and the
  second to finish fails renaming its copy onto the first's."""
  path.parent.mkdir(parents=True, exist_ok=True)
  with open(path, "a") as handle:
    fcntl.flock(handle, fcntl.LOCK_EX)
    try:
      yield
    finally:
      fcntl.flock(handle, fcntl.LOCK_UN)


def downscale_image(image: np.ndarray, factor: int) -> np.ndarray:
  """Box-filter downscale by an integer factor (area average, rounded), cropping the remainder."""
  if factor == 1:
    return image
  blocks = _blocks(image, factor).astype(np.float32)
  return np.round(blocks.mean(axis=(1, 3))).astype(np.uint8)


def downscale_label_map(label_map: np.ndarray, factor: int) -> np.ndarray:
  """Each factor×factor block -> its most frequent class id (ties to the lower id), as CamVid was made."""
  if factor == 1:
    return label_map
  blocks = _blocks(label_map[..., None], factor)[..., 0]
  h, w = blocks.shape[0], blocks.shape[2]
  flat = blocks.transpose(0, 2, 1, 3).reshape(h, w, -1)
  ids = np.unique(flat)
  counts = np.stack([(flat == c).sum(axis=-1) for c in ids], axis=-1)
  return ids[np.argmax(counts, axis=-1)].astype(np.uint8)


def _blocks(array: np.ndarray, factor: int) -> np.ndarray:
  h, w = array.shape[0] // factor * factor, array.shape[1] // factor * factor
  if h == 0 or w == 0:
    raise UsageError(f"image {array.shape[:2]} is smaller than the downscale factor {factor}")
  return array[:h, :w].reshape(h // factor, factor, w // factor, factor, array.shape[2])


def _png(array: np.ndarray) -> bytes:
  buffer = io.BytesIO()
  Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).save(buffer, format="PNG", compress_level=1)
  return buffer.getvalue()
