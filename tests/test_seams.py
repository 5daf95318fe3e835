"""The trainer's seams for the coming methods: records with label maps reach the model cropped with their
images (on CamVid), frozen parameter groups stay bit for bit, warm starts copy what matches into a larger
model and say what they did not, exports leave training-only networks out of the file and the weights
id, and a run stops under a wall-clock budget and resumes."""

import json

import jax
import ml_collections
import numpy as np
import pytest
from flax import nnx, serialization

from compzoo import exports, models
from compzoo.checkpoints import Checkpoints
from compzoo.data import pipeline
from compzoo.errors import UsageError
from compzoo.train.loop import train_and_evaluate
from conftest import SHARED
from toy_models import use_toy_models
from train_helpers import tiny_config

CAMVID = SHARED / "data" / "camvid"


def _config(model, objective, data, steps, **train):
  return ml_collections.ConfigDict(dict(
      model=model, objective=objective, data=data,
      optimizer=dict(name="adam", learning_rate=1e-2, schedule="constant"),
      train=dict(steps=steps, seed=0, log_every=steps, eval_every=steps, checkpoint_every=steps, eval_images=4,
                 **train)))


def _gan_config(steps=3, **train):
  return _config(dict(name="toy", kind="gan_autoencoder"), dict(name="gan", distortion_weight=1.0),
                 dict(source="embedded", crop=16, batch_size=2), steps, **train)


def _find_crop(crop, records):
  """(record index, top, left, flipped) of an image crop among ``records``, by exact match."""
  size = crop.shape[0]
  for flipped, wanted in ((False, crop), (True, crop[:, ::-1])):
    for index, record in enumerate(records):
      for top, left in zip(*np.nonzero((record["image"] == wanted[0, 0]).all(axis=-1))):
        if np.array_equal(record["image"][top:top + size, left:left + size], wanted):
          return index, top, left, flipped
  raise AssertionError("crop not found in any record")


@pytest.mark.slow
def test_camvid_label_maps_reach_the_model_cropped_with_their_images(monkeypatch, tmp_path):
  if not CAMVID.is_dir():
    pytest.skip(f"CamVid not found at {CAMVID}")
  data = dict(source="paired_folders", path=str(CAMVID), data_dir=str(tmp_path / "tfds"), crop=48, batch_size=8,
              eval_split="val")
  # Exactly: each crop of the pipeline, found in its source image, has that place's labels (mirrored with it).
  source = pipeline.record_source(ml_collections.ConfigDict(data), "val")
  records = [source[i] for i in range(len(source))]
  batch = next(pipeline.train_batches(source, crop=48, batch_size=8, seed=1))
  flips = 0
  for image, labels in zip(batch["image"], batch["label_map"]):
    index, top, left, flipped = _find_crop(image, records)
    expected = records[index]["label_map"][top:top + 48, left:left + 48]
    np.testing.assert_array_equal(labels, expected[:, ::-1] if flipped else expected)
    flips += flipped
  assert 0 < flips < 8
  # Through the loop: a small per-pixel classifier fits the label maps it is handed (accuracy 0.60 after
  # 300 steps; the same run with labels shifted 6 pixels from their images reaches 0.56, and road, the
  # largest class, is 32% of the pixels).
  use_toy_models(monkeypatch)
  config = _config(dict(name="toy", kind="pixel_classifier"), dict(name="segmentation"), data, steps=300)
  config.train.log_every = 50
  final = train_and_evaluate(config, tmp_path / "run", progress=False)
  assert final["accuracy"] > 0.58


def test_a_frozen_group_is_bit_identical_after_training(tmp_path):
  config = tiny_config(steps=4)
  config.train.freeze = "analysis, prior"
  train_and_evaluate(config, tmp_path, progress=False)
  trained = serialization.msgpack_restore((tmp_path / "export" / exports.PARAMS_FILE).read_bytes())
  initial = models.decoding_state(models.build(config.model, seed=config.train.seed))
  for part in ("analysis", "prior"):
    for a, b in zip(jax.tree.leaves(initial[part]), jax.tree.leaves(trained[part]), strict=True):
      np.testing.assert_array_equal(a, b)
  assert not all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(initial["synthesis"]),
                                                      jax.tree.leaves(trained["synthesis"])))
  with pytest.raises(UsageError, match="matches no parameter"):
    config.train.freeze = "analysys"
    train_and_evaluate(config, tmp_path / "typo", progress=False)


def test_frozen_parameters_have_no_optimizer_state(tmp_path):
  from compzoo.train.loop import new_train_state
  config = tiny_config()
  config.train.freeze = "analysis"
  _, state = new_train_state(config)
  optimizer_paths = {".".join(map(str, path)) for path, _ in nnx.to_flat_state(nnx.state(state.optimizers))}
  assert not any(".analysis." in path for path in optimizer_paths)
  assert any(".synthesis." in path for path in optimizer_paths)


def test_export_of_a_gan_holds_no_discriminator_and_the_generators_weights_id(monkeypatch, tmp_path):
  use_toy_models(monkeypatch)
  config = _gan_config()
  train_and_evaluate(config, tmp_path / "gan", progress=False)
  shipped = serialization.msgpack_restore((tmp_path / "gan" / "export" / exports.PARAMS_FILE).read_bytes())
  assert set(shipped) == {"encoder", "decoder"}
  gan = exports.load(tmp_path / "gan")  # the workdir: its checkpoint holds the discriminator
  assert not hasattr(gan.model, "discriminator")
  generator = models.build(dict(name="toy", kind="gan_autoencoder", discriminator=False))
  nnx.update(generator, nnx.state(gan.model))
  alone = exports.write(tmp_path / "alone", dict(model=dict(name="toy", kind="gan_autoencoder")), generator)
  assert exports.read(tmp_path / "gan" / "export").weights_id == gan.weights_id == exports.read(alone).weights_id


def test_init_from_copies_an_autoencoder_into_autoencoder_and_discriminator(monkeypatch, tmp_path):
  use_toy_models(monkeypatch)
  source = models.build(dict(name="toy", kind="gan_autoencoder", discriminator=False), seed=3)
  exports.write(tmp_path / "ae", dict(model=dict(name="toy", kind="gan_autoencoder", discriminator=False)), source)
  config = _gan_config(steps=1, init_from=str(tmp_path / "ae"))
  config.optimizer.learning_rate = 0.0  # so the run's weights are the warm start's
  train_and_evaluate(config, tmp_path / "gan", progress=False)
  report = json.loads((tmp_path / "gan" / "init_from.json").read_text())
  assert sorted(report["copied"]) == ["decoder.bias", "decoder.kernel", "encoder.bias", "encoder.kernel"]
  assert report["initialised"] and all(p.startswith("discriminator.") for p in report["initialised"])
  trained = exports.read(tmp_path / "gan" / "export").model
  np.testing.assert_array_equal(trained.encoder.kernel[...], source.encoder.kernel[...])
  with pytest.raises(UsageError, match="shares no parameter"):
    other = tiny_config(steps=1)
    other.train.init_from = str(tmp_path / "ae")
    train_and_evaluate(other, tmp_path / "unrelated", progress=False)


@pytest.mark.slow
def test_a_run_stops_under_its_wall_clock_budget_and_resumes(tmp_path, capsys):
  config = tiny_config(steps=6)
  config.train.max_seconds = 1e-6  # spent by the first step
  train_and_evaluate(config, tmp_path, progress=False)
  assert "run again to resume" in capsys.readouterr().out
  assert Checkpoints(tmp_path).latest_step() == 1 and not (tmp_path / "export").exists()
  config.train.max_seconds = 0
  train_and_evaluate(config, tmp_path, progress=False)
  assert Checkpoints(tmp_path).latest_step() == 6 and (tmp_path / "export").is_dir()
