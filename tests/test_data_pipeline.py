"""Local data through the TFDS builders (array_record, no TensorFlow): image folders, paired image/label
folders, class-labelled zips and MNIST IDX files become records; the 'tfds' loader reads the same records
by name; the grain pipeline crops and flips every spatial key together, and batches depend only on
(seed, step)."""

import concurrent.futures
import gzip
import io
import struct
import zipfile

import ml_collections
import numpy as np
import pytest
from PIL import Image

from compzoo.data import builders, pipeline
from compzoo.data.builders import downscale_image, downscale_label_map, prepare
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
  return {record["name"].decode() if isinstance(record["name"], bytes) else record["name"]: record
          for record in (source[i] for i in range(len(source)))}


def test_folder_splits_hold_the_images_exactly(folder, tmp_path):
  root, images = folder
  splits = prepare("folder", root, tmp_path)
  assert {k: len(v) for k, v in splits.items()} == {"train": 5, "val": 2}
  decoded = {**_by_name(splits["train"]), **_by_name(splits["val"])}
  assert decoded.keys() == images.keys()
  for name, image in images.items():
    np.testing.assert_array_equal(decoded[name]["image"], image)


def test_two_jobs_building_the_same_data_at_once_both_get_it(folder, tmp_path):
  """Two training runs started together used to race: the second finished its copy, failed to rename it
  onto the first's and crashed (FileExistsError). Now one builds while the other waits, then reads."""
  root, images = folder
  with concurrent.futures.ThreadPoolExecutor(3) as pool:
    results = list(pool.map(lambda _: prepare("folder", root, tmp_path), range(3)))
  for splits in results:
    assert _by_name(splits["train"]).keys() | _by_name(splits["val"]).keys() == images.keys()


def test_downscaled_folders_are_a_separate_cache(folder, tmp_path):
  root, images = folder
  splits = prepare("folder", root, tmp_path, downscale=2)
  for name, record in _by_name(splits["val"]).items():
    np.testing.assert_array_equal(record["image"], downscale_image(images[name], 2))
  assert len(list((tmp_path / "image_folder_dataset").iterdir())) == 1
  assert downscale_image(np.full((5, 4, 3), 7, np.uint8), 2).shape == (2, 2, 3)


def test_label_maps_downscale_to_the_majority_class():
  labels = np.array([[1, 1, 2, 3], [1, 0, 3, 2], [5, 5, 4, 4], [6, 6, 4, 4]], np.uint8)
  assert downscale_label_map(labels, 2).tolist() == [[1, 2], [5, 4]]  # a 2-2 tie goes to the lower id


@pytest.fixture(scope="module")
def paired(tmp_path_factory):
  """CamVid's layout: <split>/images and <split>/labels, where each label is the image's red channel // 64."""
  root = tmp_path_factory.mktemp("paired")
  rng = np.random.default_rng(1)
  for split, count in (("train", 3), ("test", 1)):
    for sub in ("images", "labels"):
      (root / split / sub).mkdir(parents=True)
    for i in range(count):
      image = rng.integers(0, 256, (18, 26, 3), dtype=np.uint8)
      Image.fromarray(image).save(root / split / "images" / f"{i}.png")
      Image.fromarray(image[..., 0] // 64).save(root / split / "labels" / f"{i}.png")
  return root


def test_paired_folders_give_images_with_their_label_maps(paired, tmp_path):
  splits = prepare("paired_folders", paired, tmp_path)
  assert {k: len(v) for k, v in splits.items()} == {"train": 3, "test": 1}
  source = pipeline.RecordSource(splits["train"])
  for i in range(len(source)):
    record = source[i]
    assert set(record) == {"image", "label_map"} and record["label_map"].shape == (18, 26)
    np.testing.assert_array_equal(record["label_map"], record["image"][..., 0] // 64)


def test_files_read_the_same_layouts_into_memory_without_tfds(folder, paired, tmp_path):
  root, images = folder
  train = pipeline.record_source({"source": "files", "path": str(root)}, "train")
  assert len(train) == 5
  for i, name in enumerate(sorted(n for n in images if n.startswith("train"))):
    np.testing.assert_array_equal(train[i]["image"], images[name])
  record = pipeline.record_source({"source": "files", "path": str(paired)}, "test")[0]
  np.testing.assert_array_equal(record["label_map"], record["image"][..., 0] // 64)
  flat = tmp_path / "flat"
  flat.mkdir()
  Image.fromarray(images["val0.png"]).save(flat / "a.webp", lossless=True)
  np.testing.assert_array_equal(pipeline.record_source({"source": "files", "path": str(flat)}, "train")[0]["image"],
                                images["val0.png"])
  for data, split in (({"path": str(flat)}, "val"), ({"path": str(root)}, "test"), ({"path": str(tmp_path / "no")}, "train")):
    with pytest.raises(UsageError, match="no split|no such image folder"):
      pipeline.record_source({"source": "files", **data}, split)
  with pytest.raises(UsageError, match="TFDS-built"):
    pipeline.record_source({"source": "files", "path": str(root), "downscale": 2}, "train")


def test_crops_and_flips_move_label_maps_with_their_images(paired, tmp_path):
  data = ml_collections.ConfigDict(dict(source="paired_folders", path=str(paired), data_dir=str(tmp_path)))
  source = pipeline.record_source(data, "train")
  flipped = 0
  for step, batch in zip(range(12), pipeline.train_batches(source, crop=12, batch_size=3, seed=2)):
    assert batch["image"].shape == (3, 12, 12, 3) and batch["label_map"].shape == (3, 12, 12)
    np.testing.assert_array_equal(batch["label_map"], batch["image"][..., 0] // 64)
    flipped += sum(not any(np.array_equal(image, source[i]["image"][r:r + 12, c:c + 12])
                           for i in range(3) for r in range(7) for c in range(15)) for image in batch["image"])
  assert flipped > 0  # some crops were mirrored, and their label maps with them
  small = {"image": np.zeros((5, 7, 3), np.uint8), "label_map": np.ones((5, 7), np.uint8)}
  padded = pipeline.random_crop_flip(small, 9, np.random.default_rng(0))
  assert padded["image"].shape == (9, 9, 3) and (padded["label_map"] == 1).all()
  evaluation = pipeline.eval_batch(source, 8, 2)
  np.testing.assert_array_equal(evaluation["label_map"], evaluation["image"][..., 0] // 64)


def test_class_zips_label_images_by_folder(tmp_path):
  rng = np.random.default_rng(2)
  expected = {}
  for split in ("train", "test"):
    with zipfile.ZipFile(tmp_path / f"{split}.zip", "w") as archive:
      for cls in ("cat", "airplane", "dog"):
        image = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="PNG")
        archive.writestr(f"{cls}/{split}0.png", buffer.getvalue())
        expected[f"{cls}/{split}0.png"] = (image, sorted(["cat", "airplane", "dog"]).index(cls))
  splits = prepare("class_zips", tmp_path, tmp_path / "tfds")
  assert {k: len(v) for k, v in splits.items()} == {"train": 3, "test": 3}
  for split in splits.values():
    for name, record in _by_name(split).items():
      image, label = expected[name]
      np.testing.assert_array_equal(record["image"], image)
      assert pipeline.RecordSource(split)[0]["label"].dtype == np.int32 and int(record["label"]) == label


def _write_idx(folder, images, labels):
  with gzip.open(folder / builders.MNIST_FILES[0], "wb") as f:
    f.write(struct.pack(">IIII", 2051, len(images), 28, 28) + images.tobytes())
  with gzip.open(folder / builders.MNIST_FILES[1], "wb") as f:
    f.write(struct.pack(">II", 2049, len(labels)) + labels.tobytes())


def test_mnist_idx_splits_in_a_fixed_order(tmp_path, monkeypatch):
  monkeypatch.setattr(builders, "MNIST_TRAIN", 7)
  rng = np.random.default_rng(3)
  images, labels = rng.integers(0, 256, (10, 28, 28), dtype=np.uint8), np.arange(10, dtype=np.uint8)
  _write_idx(tmp_path, images, labels)
  splits = prepare("mnist_idx", tmp_path, tmp_path / "tfds")
  assert {k: len(v) for k, v in splits.items()} == {"train": 7, "test": 3}
  seen = []
  for split in splits.values():
    for i in range(len(split)):
      record = pipeline.RecordSource(split)[i]
      assert record["image"].shape == (28, 28, 1)
      np.testing.assert_array_equal(record["image"][..., 0], images[record["label"]])
      seen.append(int(record["label"]))
  assert sorted(seen) == list(range(10))
  (tmp_path / "bad").mkdir()
  _write_idx(tmp_path / "bad", images, labels[:9])
  with pytest.raises(UsageError, match="matching length"):
    prepare("mnist_idx", tmp_path / "bad", tmp_path / "tfds")


def test_tfds_loader_reads_prepared_records_by_name(folder, tmp_path):
  root, images = folder
  prepare("folder", root, tmp_path)
  (config_dir,) = (tmp_path / "image_folder_dataset").iterdir()
  data = ml_collections.ConfigDict(dict(source="tfds", name=f"image_folder_dataset/{config_dir.name}",
                                        data_dir=str(tmp_path), rename={"image": "image"}))
  source = pipeline.record_source(data, "val")
  assert len(source) == 2 and set(source[0]) == {"image"}
  data.name = "no_such_dataset"
  with pytest.raises(UsageError, match="cannot open TFDS dataset"):
    pipeline.record_source(data, "train")


def test_batches_depend_only_on_seed_and_step(folder, tmp_path):
  root, _ = folder
  source = pipeline.RecordSource(prepare("folder", root, tmp_path)["train"])
  run = pipeline.train_batches(source, crop=24, batch_size=3, seed=5)
  batches = [next(run)["image"] for _ in range(6)]
  assert batches[0].shape == (3, 24, 24, 3) and batches[0].dtype == np.uint8
  resumed = pipeline.train_batches(source, crop=24, batch_size=3, seed=5, start_step=4)
  np.testing.assert_array_equal(next(resumed)["image"], batches[4])
  other = pipeline.train_batches(source, crop=24, batch_size=3, seed=6)
  assert not np.array_equal(next(other)["image"], batches[0])


def test_process_shares_are_the_rows_of_the_one_process_batches(folder, tmp_path):
  root, _ = folder
  source = pipeline.RecordSource(prepare("folder", root, tmp_path)["train"])
  whole = pipeline.train_batches(source, crop=16, batch_size=4, seed=3, start_step=2, with_indices=True)
  expected = [next(whole) for _ in range(3)]
  for count in (2, 4):
    shares = [pipeline.train_batches(source, crop=16, batch_size=4, seed=3, start_step=2, shard=(index, count),
                                     with_indices=True) for index in range(count)]
    for batch in expected:
      parts = [next(share) for share in shares]
      assert all(part["image"].shape[0] == 4 // count for part in parts)
      np.testing.assert_array_equal(np.concatenate([part["image"] for part in parts]), batch["image"])
      np.testing.assert_array_equal(np.concatenate([part["source_index"] for part in parts]), batch["source_index"])
  assert len(set(expected[0]["source_index"].tolist())) == 4  # distinct records within a batch
  with pytest.raises(UsageError, match="equal share"):
    pipeline.train_batches(source, crop=16, batch_size=4, seed=3, shard=(0, 3))
  with pytest.raises(UsageError, match="equal share"):
    pipeline.train_batches(source, crop=16, batch_size=4, seed=3, shard=(2, 2))


def test_bad_sources_are_usage_errors(tmp_path):
  with pytest.raises(UsageError, match="no such data folder"):
    prepare("folder", tmp_path / "missing", tmp_path)
  (tmp_path / "empty").mkdir()
  with pytest.raises(UsageError, match="no images"):
    prepare("folder", tmp_path / "empty", tmp_path / "tfds")
  with pytest.raises(UsageError, match="unknown data source"):
    pipeline.record_source(ml_collections.ConfigDict(dict(source="ftp")), "train")
  with pytest.raises(UsageError, match="label_map"):
    pipeline.random_crop_flip({"image": np.zeros((4, 4, 3)), "label_map": np.zeros((3, 4))}, 2,
                              np.random.default_rng(0))


def test_embedded_default_splits():
  data = ml_collections.ConfigDict(dict(source="embedded"))
  assert len(pipeline.record_source(data, "train")) == 4
  assert len(pipeline.record_source(data, "val")) == 1


def test_the_shared_mnist_files_become_8000_and_2000_records(tmp_path):
  from conftest import SHARED
  folder = SHARED / "data" / "mnist"
  if not folder.is_dir():
    pytest.skip(f"MNIST not found at {folder}")
  splits = prepare("mnist_idx", folder, tmp_path)
  counts = np.zeros(10, int)
  for split in splits.values():
    source = pipeline.RecordSource(split)
    counts += np.bincount([int(source[i]["label"]) for i in range(len(source))], minlength=10)
  assert {k: len(v) for k, v in splits.items()} == {"train": 8000, "test": 2000}
  assert counts.tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]  # MNIST's test labels


def test_a_mixture_concatenates_sources_and_keeps_the_keys_they_share():
  data = ml_collections.ConfigDict(dict(source="mixture", parts=[dict(source="embedded"), dict(source="embedded")]))
  assert len(pipeline.record_source(data, "train")) == 8
  labelled = [{"image": np.zeros((4, 4, 3), np.uint8), "label_map": np.zeros((4, 4), np.uint8)}]
  plain = [{"image": np.ones((5, 5, 3), np.uint8)}] * 2
  mixed = pipeline._Concatenated([pipeline._ArraySource(labelled), pipeline._ArraySource(plain)])
  assert len(mixed) == 3 and [set(mixed[i]) for i in range(3)] == [{"image"}] * 3
  assert mixed[2]["image"].shape == (5, 5, 3)
  with pytest.raises(IndexError):
    mixed[3]


def test_train_splits_joins_a_sets_splits_for_training_only(folder, tmp_path):
  root, images = folder
  data = ml_collections.ConfigDict(dict(source="folder", path=str(root), data_dir=str(tmp_path),
                                        train_splits="train+val"))
  joined = pipeline.record_source(data, "train")
  assert sorted(joined[i]["image"].tobytes() for i in range(len(joined))) == sorted(
      image.tobytes() for image in images.values())  # all 7, each once
  assert len(pipeline.record_source(data, "val")) == 2  # evaluation still reads its own split
  data.train_splits = "train+test"
  with pytest.raises(UsageError, match="no split 'test'"):
    pipeline.record_source(data, "train")


def test_jpeg_copies_are_made_after_the_crop_at_random_or_spread_qualities():
  from compzoo import jpeg
  source = pipeline.record_source(ml_collections.ConfigDict(dict(source="embedded")), "train")
  batch = next(pipeline.train_batches(source, crop=24, batch_size=3, seed=1, jpeg_quality=(10, 12)))
  assert batch["jpeg"].shape == batch["image"].shape and batch["jpeg_quality"].shape == (3, 2)
  expected = {q: jpeg.quality_features(jpeg.quantization_tables(jpeg.encode(batch["image"][0], q))) for q in (10, 11, 12)}
  match = [q for q, features in expected.items() if np.allclose(features, batch["jpeg_quality"][0])]
  assert len(match) == 1
  np.testing.assert_array_equal(batch["jpeg"][0], jpeg.decode(jpeg.encode(batch["image"][0], match[0])))
  evaluation = pipeline.eval_batch(source, 16, 3, jpeg_quality=(5, 45))
  assert list(evaluation["jpeg_quality"][:, 0]) == sorted(evaluation["jpeg_quality"][:, 0], reverse=True)
  with pytest.raises(UsageError, match="jpeg_quality"):
    pipeline.train_batches(source, crop=8, batch_size=1, seed=0, jpeg_quality=(50, 10))


def test_darken_scales_about_half_of_the_crops_into_fewer_levels():
  source = pipeline.record_source(ml_collections.ConfigDict(dict(source="embedded")), "train")
  plain = next(pipeline.train_batches(source, crop=32, batch_size=16, seed=3))["image"].astype(float)
  dark = next(pipeline.train_batches(source, crop=32, batch_size=16, seed=3, darken=(0.2, 0.5)))["image"]
  same = [np.array_equal(p, d) for p, d in zip(plain, dark)]
  assert 3 <= sum(same) <= 13  # the crops are the same; about half stay as they were
  for p, d in zip(plain, dark):
    if not np.array_equal(p, d):
      factor = d.astype(float).sum() / p.sum()
      assert 0.19 < factor < 0.51 and np.abs(np.round(p * factor) - d).max() <= 1
  with pytest.raises(UsageError, match="darken"):
    pipeline.train_batches(source, crop=8, batch_size=1, seed=0, darken=(0.5, 1.5))
