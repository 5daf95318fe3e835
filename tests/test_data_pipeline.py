"""Local folders through the TFDS builder (array_record, no TensorFlow), the 'tfds' loader on the same
records, and the grain pipeline: crops, flips, and batches that depend only on (seed, step)."""

import ml_collections
import numpy as np
import pytest
from PIL import Image

from compzoo.data import pipeline
from compzoo.data.folder_dataset import downscale_image, prepare_folder
from compzoo.errors import UsageError


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
  root = tmp_path_factory.mktemp("photos")
  rng = np.random.default_rng(0)
  images = {}
  for split, count in (("train", 5), ("val", 2)):
    (root / split).mkdir()
    for i in range(count):
      image = rng.integers(0, 256, (int(rng.integers(20, 40)), int(rng.integers(20, 40)), 3), dtype=np.uint8)
      Image.fromarray(image).save(root / split / f"{split}{i}.png")
      images[f"{split}{i}.png"] = image
  return root, images


def _by_name(source):
  return {record["name"].decode() if isinstance(record["name"], bytes) else record["name"]: record["image"]
          for record in (source[i] for i in range(len(source)))}


def test_folder_splits_hold_the_images_exactly(folder, tmp_path):
  root, images = folder
  splits = prepare_folder(root, tmp_path)
  assert {k: len(v) for k, v in splits.items()} == {"train": 5, "val": 2}
  decoded = {**_by_name(splits["train"]), **_by_name(splits["val"])}
  assert decoded.keys() == images.keys()
  for name, image in images.items():
    np.testing.assert_array_equal(decoded[name], image)


def test_downscaled_folders_are_a_separate_cache(folder, tmp_path):
  root, images = folder
  splits = prepare_folder(root, tmp_path, downscale=2)
  for name, image in _by_name(splits["val"]).items():
    np.testing.assert_array_equal(image, downscale_image(images[name], 2))
  assert len(list((tmp_path / "image_folder_dataset").iterdir())) == 1
  assert downscale_image(np.full((5, 4, 3), 7, np.uint8), 2).shape == (2, 2, 3)


def test_tfds_loader_reads_prepared_records_by_name(folder, tmp_path):
  root, images = folder
  prepare_folder(root, tmp_path)
  (config_dir,) = (tmp_path / "image_folder_dataset").iterdir()
  data = ml_collections.ConfigDict(dict(source="tfds", name=f"image_folder_dataset/{config_dir.name}",
                                        data_dir=str(tmp_path)))
  source = pipeline.image_source(data, "val")
  assert len(source) == 2
  assert set(_by_name(source)) == {"val0.png", "val1.png"}
  data.name = "no_such_dataset"
  with pytest.raises(UsageError, match="cannot open TFDS dataset"):
    pipeline.image_source(data, "train")


def test_batches_depend_only_on_seed_and_step(folder, tmp_path):
  root, _ = folder
  source = prepare_folder(root, tmp_path)["train"]
  run = pipeline.train_batches(source, crop=24, batch_size=3, seed=5)
  batches = [next(run) for _ in range(6)]
  assert batches[0].shape == (3, 24, 24, 3) and batches[0].dtype == np.uint8
  resumed = pipeline.train_batches(source, crop=24, batch_size=3, seed=5, start_step=4)
  np.testing.assert_array_equal(next(resumed), batches[4])
  other = pipeline.train_batches(source, crop=24, batch_size=3, seed=6)
  assert not np.array_equal(next(other), batches[0])


def test_crops_pad_small_images_and_flip():
  rng = np.random.default_rng(0)
  image = rng.integers(0, 256, (5, 9, 3), dtype=np.uint8)
  crops = [pipeline.random_crop_flip(image, 8, rng) for _ in range(40)]
  assert all(c.shape == (8, 8, 3) for c in crops)
  assert any(np.array_equal(c[:5, :8], image[:, :8]) for c in crops)
  assert any(np.array_equal(c[:5, :8], image[:, ::-1][:, :8]) for c in crops)  # some are flipped
  assert pipeline.center_crop(image, 4).shape == (4, 4, 3)


def test_bad_sources_are_usage_errors(tmp_path):
  with pytest.raises(UsageError, match="no such image folder"):
    prepare_folder(tmp_path / "missing", tmp_path)
  (tmp_path / "empty").mkdir()
  with pytest.raises(UsageError, match="no images"):
    prepare_folder(tmp_path / "empty", tmp_path / "tfds")
  with pytest.raises(UsageError, match="unknown data source"):
    pipeline.image_source(ml_collections.ConfigDict(dict(source="ftp")), "train")


def test_embedded_default_splits():
  data = ml_collections.ConfigDict(dict(source="embedded"))
  assert len(pipeline.image_source(data, "train")) == 4
  assert len(pipeline.image_source(data, "val")) == 1
