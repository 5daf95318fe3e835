"""Training data: where records come from, and the grain pipeline that turns them into batches.

A record is a dict: ``image`` (uint8 H×W×C) plus whatever side data its source has: ``label_map``
(uint8 H×W class ids) and ``label`` (int32 class id). Random crops and flips draw one offset and one flip
per record and apply them to every spatial key together (label maps are cut and mirrored, never
interpolated), and batches are dicts of stacked arrays that the loop shards as they come.

Batch ``i`` of a run is a pure function of (seed, i): the pipeline is a grain ``MapDataset`` indexed by
step, so a resumed run reads exactly the batches an uninterrupted one would have read, and the processes of
a multi-process run each read their own rows of the batches a single process would have read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Mapping, Sequence

import grain
import numpy as np

from compzoo import jpeg
from compzoo.data.images import embedded_images, list_images, load_image, load_labelled_image
from compzoo.errors import UsageError

LOCAL_SOURCES = ("folder", "paired_folders", "class_zips", "mnist_idx")  # compzoo/data/builders.py
SOURCES = LOCAL_SOURCES + ("files", "tfds", "embedded", "mixture")
RECORD_KEYS = ("image", "label_map", "label")
SPATIAL_KEYS = ("image", "label_map")


class _ArraySource(Sequence):
  """A random-access source over records held in memory (the embedded photos, tests)."""

  def __init__(self, records: Sequence[dict]):
    self._records = list(records)

  def __len__(self):
    return len(self._records)

  def __getitem__(self, index):
    return self._records[index]


class _Concatenated(Sequence):
  """Several sources one after the other, their records cut to the keys every source has (BSDS500's
  photos and CamVid's frames mix as images)."""

  def __init__(self, sources: Sequence[Sequence]):
    self._sources = [source for source in sources if len(source)]
    self._starts = np.cumsum([0] + [len(source) for source in self._sources])
    self._keys = set.intersection(*(set(source[0]) for source in self._sources)) if self._sources else set()

  def __len__(self):
    return int(self._starts[-1])

  def __getitem__(self, index):
    if not 0 <= index < len(self):
      raise IndexError(index)
    part = int(np.searchsorted(self._starts, index, side="right")) - 1
    record = self._sources[part][index - int(self._starts[part])]
    return {key: value for key, value in record.items() if key in self._keys}


class RecordSource(Sequence):
  """Any random-access source, its records reduced to ``RECORD_KEYS`` as numpy arrays (label maps H×W),
  after an optional renaming of its keys (a TFDS dataset's ``segmentation_label`` -> ``label_map``)."""

  def __init__(self, source, rename: Mapping[str, str] | None = None):
    self._source = source
    self._rename = dict(rename or {})

  def __len__(self):
    return len(self._source)

  def __getitem__(self, index):
    raw = self._source[index]
    raw = {self._rename.get(key, key): value for key, value in raw.items()}
    record = {}
    for key in RECORD_KEYS:
      if key in raw:
        value = np.asarray(raw[key])
        if key == "label_map" and value.ndim == 3:
          value = value[..., 0]
        record[key] = value.astype(np.int32) if key == "label" else value
    if "image" not in record:
      raise UsageError(f"data records need an 'image'; this source has {', '.join(raw)}")
    return record


def record_source(data: Mapping, split: str) -> RecordSource:
  """A random-access source of records for ``split``.

  data.source: 'folder', 'paired_folders', 'class_zips', 'mnist_idx' (data.path, data.downscale; cached as
  TFDS array_record under data.data_dir), 'files' (data.path laid out as 'folder' or 'paired_folders' are,
  read into memory with no TFDS: small sets, and machines without TFDS such as a lent GPU's), 'tfds' (data.name, a prepared TFDS dataset in data.data_dir,
  e.g. 'div2k' or 'cityscapes', keys renamed by data.rename), 'embedded', or 'mixture' (data.parts: a
  list of such sections, concatenated). ``data.train_splits`` ('train+test') joins several splits for training.
  """
  source = data.get("source")
  if source == "mixture":  # data.parts: data sections of their own, e.g. BSDS500 and CamVid
    return RecordSource(_Concatenated([record_source(part, split) for part in data.get("parts", ())]))
  if source == "embedded":
    images = [{"image": image} for image in embedded_images().values()]
    # Embedded photos have no splits: evaluation uses the last one, training the others.
    return RecordSource(_ArraySource(images[-1:] if split != "train" else images[:-1]))
  if source in LOCAL_SOURCES:
    from compzoo.data.builders import prepare  # imports tfds, slow; only needed here
    splits = prepare(source, data.get("path"), _data_dir(data), downscale=data.get("downscale", 1))
    # data.train_splits='train+test' trains on several of a set's splits (BSDS500's test split is not ours).
    names = ((data.get("train_splits") or split) if split == "train" else split).split("+")
    for name in names:
      if name not in splits:
        raise UsageError(f"{source} data at {data.get('path')} has no split {name!r}; it has {', '.join(splits)}")
    parts = [splits[name] for name in names]
    return RecordSource(parts[0] if len(parts) == 1 else _Concatenated(parts))
  if source == "files":
    for option in ("train_splits", "downscale"):
      if data.get(option) not in (None, "", 1):
        raise UsageError(f"data.{option} is for TFDS-built sources; 'files' reads a folder as it is")
    return RecordSource(_ArraySource(_file_records(Path(data.get("path", "")), split)))
  if source == "tfds":
    import tensorflow_datasets as tfds
    try:
      records = tfds.data_source(data.get("name"), split=split, data_dir=_data_dir(data))
    except Exception as e:  # tfds raises many kinds for missing or unprepared data sets
      raise UsageError(f"cannot open TFDS dataset {data.get('name')!r} split {split!r} in {_data_dir(data)}: {e}; "
                       "prepare it first (tfds build --file_format=array_record) where the internet is reachable") from None
    return RecordSource(records, data.get("rename"))
  raise UsageError(f"unknown data source {source!r}; use one of {', '.join(SOURCES)}")


def _file_records(path: Path, split: str) -> list[dict]:
  """The records of ``path/split`` (``path`` itself when it has no split folders and ``split`` is 'train'):
  its images, or ``images/`` with label maps of the same names in ``labels/``."""
  folder = path / split
  if not folder.is_dir():
    if split != "train" or not path.is_dir() or any((path / s).is_dir() for s in ("train", "val", "test")):
      raise UsageError(f"files data at {path} has no split {split!r}")
    folder = path
  if not (folder / "images").is_dir():
    return [{"image": load_image(p)} for p in list_images(folder)]
  if not (folder / "labels").is_dir():
    return [{"image": load_image(p)} for p in list_images(folder / "images")]
  pairs = (load_labelled_image(p, folder / "labels" / f"{p.stem}.png") for p in list_images(folder / "images"))
  return [{"image": image, "label_map": label_map} for image, label_map in pairs]


def _data_dir(data) -> str:
  return str(Path(data.get("data_dir", ".data/tfds")).expanduser())


class RandomCropFlip(grain.transforms.RandomMap):
  """A random crop of ``size`` (edge-padded first if the image is smaller) and a random horizontal flip,
  the same for every spatial key of the record."""

  def __init__(self, size: int, flip: bool = True):
    self.size, self.flip = size, flip

  def random_map(self, record, rng: np.random.Generator):
    return random_crop_flip(record, self.size, rng, self.flip)


def random_crop_flip(record: dict, size: int, rng: np.random.Generator, flip: bool = True) -> dict:
  record = _pad_to_at_least(record, size)
  height, width = record["image"].shape[:2]
  top = rng.integers(0, height - size + 1)
  left = rng.integers(0, width - size + 1)
  flip = rng.random() < 0.5 and flip
  out = dict(record)
  for key in SPATIAL_KEYS:
    if key in record:
      crop = record[key][top:top + size, left:left + size]
      out[key] = np.ascontiguousarray(crop[:, ::-1] if flip else crop)
  return out


class JpegDegrade(grain.transforms.RandomMap):
  """Adds the record's image through baseline JPEG at a quality drawn uniformly from ``qualities`` (low,
  high): ``jpeg`` (libjpeg's pixels) and ``jpeg_quality`` (compzoo.jpeg.quality_features). Runs after the
  crop, so JPEG's 8×8 grid starts at the crop's corner, as it does for a whole image."""

  def __init__(self, qualities):
    self.low, self.high = check_qualities(qualities)

  def random_map(self, record, rng: np.random.Generator):
    return with_jpeg(record, int(rng.integers(self.low, self.high + 1)))


class Darken(grain.transforms.RandomMap):
  """Half of the crops darkened: the image times a factor drawn uniformly from ``factors`` (low, high), rounded.
  Darker pictures with fewer levels and less noise, content that photos of textured daylight scenes rarely
  show and lossless models then overpay on (issue #32). Darkening only merges levels: it never leaves the
  empty levels between used ones that brightening would."""

  def __init__(self, factors):
    self.low, self.high = check_darken(factors)

  def random_map(self, record, rng: np.random.Generator):
    factor = rng.uniform(self.low, self.high)
    if rng.random() >= 0.5:
      return record
    return {**record, "image": np.round(record["image"] * factor).astype(record["image"].dtype)}


def check_darken(factors) -> tuple[float, float]:
  low, high = (float(f) for f in factors)
  if not 0 < low <= high <= 1:
    raise UsageError(f"data.darken must be (low, high) with 0 < low <= high <= 1, got {factors}")
  return low, high


def check_qualities(qualities) -> tuple[int, int]:
  low, high = (int(q) for q in qualities)
  if not 1 <= low <= high <= 100:
    raise UsageError(f"data.jpeg_quality must be (low, high) with 1 <= low <= high <= 100, got {qualities}")
  return low, high


def with_jpeg(record: dict, quality: int) -> dict:
  decoded, features = jpeg.degrade(record["image"], quality)
  return {**record, "jpeg": decoded, "jpeg_quality": features}


def center_crop(record: dict, size: int) -> dict:
  record = _pad_to_at_least(record, size)
  height, width = record["image"].shape[:2]
  top, left = (height - size) // 2, (width - size) // 2
  return {key: value[top:top + size, left:left + size] if key in SPATIAL_KEYS else value
          for key, value in record.items()}


def _pad_to_at_least(record: dict, size: int) -> dict:
  """Edge padding of every spatial key to at least size×size (label maps repeat their edge ids)."""
  height, width = record["image"].shape[:2]
  for key in SPATIAL_KEYS:
    if key in record and record[key].shape[:2] != (height, width):
      raise UsageError(f"record's {key} is {record[key].shape[:2]}, its image {(height, width)}")
  pad_h, pad_w = max(size - height, 0), max(size - width, 0)
  if not (pad_h or pad_w):
    return record
  padded = dict(record)
  for key in SPATIAL_KEYS:
    if key in record:
      value = record[key]
      padded[key] = np.pad(value, ((0, pad_h), (0, pad_w)) + ((0, 0),) * (value.ndim - 2), mode="edge")
  return padded


def train_batches(source, crop: int, batch_size: int, seed: int, start_step: int = 0,
                  num_threads: int = 2, flip: bool = True, jpeg_quality=None, shard: tuple[int, int] = (0, 1),
                  with_indices: bool = False, darken=None) -> Iterator[dict]:
  """Endless batches of records (image: rows×crop×crop×C uint8, ...), starting at batch ``start_step``.
  ``flip=False`` for data whose mirror images are not samples of it (digits); ``jpeg_quality`` (low,
  high) adds each crop's JPEG at a random quality (``JpegDegrade``); ``darken`` (low, high) darkens half of
  the crops (``Darken``).

  ``batch_size`` is the global batch; ``shard=(index, count)`` gives this process rows
  ``index*rows ... (index+1)*rows - 1`` of every global batch (rows = batch_size / count) and reads only
  the records in them. Every record's crop and flip depend only on (seed, its place in the stream), so the
  processes together read exactly the global batches of a one-process run with the same seed.
  ``with_indices`` adds ``source_index`` (int) to each record: which record of ``source`` it is.
  """
  if len(source) == 0:
    raise UsageError("the training split has no records")
  index, count = shard
  if count < 1 or not 0 <= index < count or batch_size % count:
    raise UsageError(f"cannot give shard {index} of {count} an equal share of a batch of {batch_size}")
  dataset = grain.MapDataset.source(source)
  if with_indices:
    dataset = dataset.map_with_index(lambda i, record: {**record, "source_index": np.int64(i)})
  dataset = dataset.seed(seed).shuffle().repeat(None).random_map(RandomCropFlip(crop, flip))
  if darken:
    dataset = dataset.random_map(Darken(darken))
  if jpeg_quality:
    dataset = dataset.random_map(JpegDegrade(jpeg_quality))
  # Blocks of `rows` consecutive records; global batch i is blocks i*count ... i*count + count - 1.
  dataset = dataset.batch(batch_size // count, drop_remainder=True)
  if count > 1:
    dataset = dataset[index::count]
  dataset = dataset.slice(slice(start_step, None))
  options = grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=4)
  return iter(dataset.to_iter_dataset(read_options=options))


def eval_batch(source, crop: int, count: int, jpeg_quality=None) -> dict:
  """A fixed batch of center crops of ``count`` records spread over the source (for logged metrics and
  pictures); with ``jpeg_quality``, their JPEGs at qualities spread evenly over (low, high)."""
  count = min(count, len(source))
  picks = np.linspace(0, len(source) - 1, count).round().astype(int) if count else []
  records = [center_crop(source[int(i)], crop) for i in picks]
  if jpeg_quality:
    low, high = check_qualities(jpeg_quality)
    qualities = np.linspace(low, high, len(records)).round().astype(int)
    records = [with_jpeg(record, int(q)) for record, q in zip(records, qualities)]
  return {key: np.stack([r[key] for r in records]) for key in records[0]}


def example_batch(config, photo: np.ndarray, rows: int, crop: int) -> dict:
  """``rows`` records of every key ``config``'s objective reads, cut from one photo (rows × crop × crop;
  the model's channel count): steps of a config with no data set at hand (tests, a GPU's smoke steps).
  Records differ (flips, shifted label maps), so batch statistics and MMDs see more than one sample."""
  channels = config.model.get("channels", 3)
  photo = np.resize(photo, (max(crop, 512), max(crop, 512), photo.shape[-1]))[:crop, :crop, :channels]
  images = np.stack([photo[::-1] if i % 2 else photo for i in range(rows)])
  record = {"image": np.ascontiguousarray(images)}
  task = config.objective.get("task", config.objective.name)  # a joint objective names its task
  if task == "classification":
    record["label"] = np.arange(rows, dtype=np.int32) % config.model.get("classes", 10)
  if task == "segmentation" or config.model.get("label_classes"):
    record["label_map"] = (np.indices((rows, crop, crop)).sum(0) % 12).astype(np.int32)
  if config.data.get("jpeg_quality"):
    low, high = check_qualities(config.data.jpeg_quality)
    records = [with_jpeg({"image": image}, low + i * (high - low) // max(rows - 1, 1)) for i, image in enumerate(images)]
    record = {key: np.stack([r[key] for r in records]) for key in records[0]}
  return record

