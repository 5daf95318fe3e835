"""Inference from compressed latents (Torfason et al. 2018; compzoo/models/latent_tasks.py, compzoo/inference.py):
the heads are cut where the latents enter; tiny classification and segmentation runs on latents learn with
the codec frozen; joint training moves codec and head; warm starts place a codec under a prefix; and
``compzoo infer`` gives the Python API's answer from a file's latents without synthesizing a pixel, decodes
with --from-rgb, and refuses other weights, other codecs and bad files clearly."""

import json

import jax
import ml_collections
import numpy as np
import pytest
from flax import nnx

from compzoo import bitstream, cli, exports, inference, models, zoo
from compzoo.errors import BitstreamError, UsageError
from compzoo.models import bmshj2018, latent, latent_tasks
from compzoo.train import groups
from compzoo.train.registry import make_objective
from experiments.configs import latent_tasks as configs
from train_helpers import run_steps

CODEC = dict(channels=8, latent=8, stages=3)
OPTIMIZER = dict(name="adam", learning_rate=3e-3, schedule="constant", warmup=0, clip=1.0)


def _model(task, path, **head):
  head = head or (dict(widths=(4, 4, 8, 8), blocks=(1, 1, 1, 1)) if task == "classify" else dict(width=2, depth=4))
  return models.build(ml_collections.ConfigDict(dict(name="latent_task", task=task, path=path, codec=CODEC,
                                                     head=head, classes=4 if task == "classify" else 2)))


def _params(module):
  return jax.tree.map(np.array, nnx.to_pure_dict(nnx.state(module, nnx.Param)))


def _same(a, b):
  return all(jax.tree.leaves(jax.tree.map(np.array_equal, a, b)))


def _coloured(i, n=8):
  """Toy classification: the class is the image's dominant colour channel (3 = grey)."""
  rng = np.random.default_rng(i)
  labels = rng.integers(0, 4, n)
  images = rng.integers(0, 60, (n, 32, 32, 3)).astype(np.uint8) + 60
  for image, label in zip(images, labels):
    image[..., label % 3] += 120 if label < 3 else 0
  return {"image": images, "label": labels.astype(np.int32)}


def _halves(i, n=2, size=32):
  """Toy segmentation: a bright upper region (class 0) over a dark lower one (class 1), split anywhere."""
  rng = np.random.default_rng(i)
  images = np.zeros((n, size, size, 3), np.uint8)
  labels = np.ones((n, size, size), np.int32)
  for image, label in zip(images, labels):
    split = rng.integers(4, size - 4)
    image[:split], label[:split] = rng.integers(150, 255, 3), 0
    image[split:] = rng.integers(0, 100, 3)
  return {"image": images, "label_map": labels}


def test_the_latent_heads_are_the_rgb_families_cut_at_the_latent_resolution():
  rgb, on_latents = _model("classify", "rgb"), _model("classify", "latent")
  assert len(on_latents.head.blocks) == 1 < len(rgb.head.blocks) == 4  # only the last stage remains
  assert on_latents.head.stem.in_features == 8 and rgb.head.stem.in_features == 3
  images = np.zeros((2, 32, 32, 3), np.uint8)
  assert on_latents.head_inputs(images).shape == (2, 4, 4, 8)
  assert on_latents.classify(images).shape == rgb.classify(images).shape == (2, 4)
  segment = _model("segment", "latent")
  assert segment.head.start == 3 and len(segment.head.downs) == 1
  odd = np.zeros((1, 45, 37, 3), np.uint8)  # 6×5 latents: logits upsampled and cropped to the image
  assert segment.segment(odd).shape == (1, 45, 37, 2)
  assert _model("segment", "original").codec is None


@pytest.mark.parametrize("task, batches", [("cifar10", _coloured), ("camvid", _halves)])
def test_a_tiny_head_on_frozen_latents_learns(task, batches):
  """Each task's tiny config on latents (toy data): the loss falls while the codec stays bit for bit."""
  config = configs.get_config(f"tiny-{task}-latent-low")
  model = models.build(config.model)
  codec_before = _params(model.codec)
  objective = make_objective(config.objective)
  frozen = groups.frozen_filter(model, config.train.freeze)
  model, history = run_steps(model, objective, OPTIMIZER, batches, 60, frozen=frozen)
  losses = [float(h["loss"]) for h in history]
  assert np.mean(losses[-10:]) < 0.7 * np.mean(losses[:10]), losses
  assert _same(codec_before, _params(model.codec))


def test_joint_training_moves_codec_and_head_and_reports_both_terms():
  model = _model("classify", "latent")
  before_codec, before_head = _params(model.codec), _params(model.head)
  objective = make_objective(dict(name="joint_task", task="classification", lmbda=0.01, rate_target=0.5, beta=10.0))
  model, history = run_steps(model, objective, OPTIMIZER, _coloured, 3)
  assert {"rd/bpp", "rd/psnr", "task/loss", "task/accuracy", "loss"} <= set(history[-1])
  assert not _same(before_codec, _params(model.codec)) and not _same(before_head, _params(model.head))
  with pytest.raises(UsageError, match="joint objective task"):
    make_objective(dict(name="joint_task", task="detection"))


def test_a_codec_warm_starts_under_a_prefix(tmp_path):
  codec = models.build(ml_collections.ConfigDict(dict(name="bmshj2018_factorized", **CODEC)), seed=5)
  exports.write(tmp_path / "codec", {"model": dict(name="bmshj2018_factorized", **CODEC)}, codec)
  model = _model("classify", "latent")
  report = groups.warm_start(model, f"codec={tmp_path / 'codec'}")
  assert _same(_params(model.codec), _params(codec))
  assert report.initialised and all(p.startswith("head.") for p in report.initialised)
  assert groups.parse_sources("codec=a, b") == [("codec", "a"), ("", "b")]


def test_config_jobs_read_the_workdirs_before_them():
  assert configs.get_config("cpu-cifar10-latent-low").train.init_from == "codec=runs/lt/codec-low"
  assert configs.get_config("cpu-cifar10-latent-low").train.freeze == "codec"
  assert configs.get_config("cpu-camvid-joint-high").train.init_from == "runs/lt/camvid-latent-high"
  assert configs.get_config("cpu-camvid-joint-high").objective.name == "joint_task"


# The shipped heads and codecs (compzoo/weights/latent-tasks).

@pytest.fixture(scope="module")
def photo():
  import skimage.data
  return skimage.data.chelsea()[40:72, 100:132]  # 32×32, as CIFAR-10's


def _infer(capsys, *args):
  assert cli.main(["infer", *map(str, args)]) == 0
  return capsys.readouterr().out


def _no_synthesis(monkeypatch):
  def refuse(*args, **kwargs):
    raise AssertionError("the latent path synthesized pixels")
  monkeypatch.setattr(bmshj2018.FactorizedPriorAutoencoder, "synthesize", refuse)
  monkeypatch.setattr(latent_tasks.TaskModel, "synthesize", refuse)
  monkeypatch.setattr(latent, "_pixels_of", refuse)


@pytest.mark.parametrize("codec_name", ["torfason-ae:rate=mid", "torfason-ae-joint-cifar10:rate=low"])
def test_infer_classifies_from_latents_as_the_python_api_does(codec_name, photo, tmp_path, capsys, monkeypatch):
  codec = zoo.make_codec(codec_name)
  payload = codec.compress(photo)
  (tmp_path / "cat.czoo").write_bytes(payload)
  head = inference.head_for("cifar10", codec.name)
  probabilities = head.probabilities_of_latents(codec.latents(photo), photo.shape)
  _no_synthesis(monkeypatch)
  name, probability, source = _infer(capsys, "--task", "cifar10", tmp_path / "cat.czoo").split("\t")
  best = int(np.argmax(probabilities))
  assert name == inference.CIFAR10_CLASSES[best] and probability == f"{probabilities[best]:.3f}"
  assert "latents" in source
  result = inference.infer(payload, "cifar10")
  np.testing.assert_array_equal(result.probabilities, probabilities)  # the file's latents are the image's


def test_infer_segments_from_latents_and_from_decoded_pixels(tmp_path, capsys, monkeypatch):
  street = np.asarray(__import__("skimage.data", fromlist=["x"]).astronaut()[:45, :61])  # odd size
  codec = zoo.make_codec("torfason-ae:rate=low")
  (tmp_path / "s.czoo").write_bytes(codec.compress(street))
  head = inference.head_for("camvid", codec.name)
  expected = np.argmax(head.probabilities_of_latents(codec.latents(street), street.shape), -1)
  with monkeypatch.context() as patched:
    _no_synthesis(patched)
    assert "latents" in _infer(capsys, "--task", "camvid", tmp_path / "s.czoo", tmp_path / "map.png")
  from compzoo.data import load_label_map
  np.testing.assert_array_equal(load_label_map(tmp_path / "map.png"), expected)
  assert "decoded pixels" in _infer(capsys, "--task", "camvid", "--from-rgb", tmp_path / "s.czoo", tmp_path / "rgb.png")
  assert load_label_map(tmp_path / "rgb.png").shape == street.shape[:2]


def test_infer_refuses_other_weights_other_codecs_and_bad_input(photo, tmp_path, capsys):
  low = zoo.make_codec("torfason-ae:rate=low").compress(photo)
  container = bitstream.unpack(low)
  forged = bitstream.pack(bitstream.Container("torfason-ae:rate=mid", container.shape, container.streams,
                                              container.weights_id, container.content_check))
  with pytest.raises(BitstreamError, match="weights"):
    inference.infer(forged, "cifar10")
  with pytest.raises(UsageError, match="no cifar10 network reads decoded pixels"):
    inference.infer(zoo.make_codec("torfason-ae-joint-cifar10:rate=mid").compress(photo), "cifar10", from_rgb=True)
  (tmp_path / "jpeg.czoo").write_bytes(zoo.make_codec("jpeg:quality=50").compress(photo))
  (tmp_path / "cut.czoo").write_bytes(low[:-9])
  (tmp_path / "low.czoo").write_bytes(low)
  for args, code, message in [
      (["--task", "cifar10", tmp_path / "jpeg.czoo"], 2, "no cifar10 network reads latents of 'jpeg:quality=50'"),
      (["--task", "cifar10", tmp_path / "cut.czoo"], 1, "error"),
      (["--task", "cifar10", tmp_path / "missing.czoo"], 2, "no such file"),
      (["--task", "camvid", tmp_path / "low.czoo"], 2, "give an output PNG"),
      (["--task", "cifar10", tmp_path / "low.czoo", tmp_path / "x.png"], 2, "takes no output"),
      (["--task", "camvid", tmp_path / "low.czoo", tmp_path / "x.jpg"], 2, "PNG")]:
    assert cli.main(["infer", *map(str, args)]) == code, args
    assert message in capsys.readouterr().err, args


def test_shipped_heads_read_the_shipped_codec_they_name():
  for task in inference.TASKS:
    folders = inference.heads(task)
    assert len(folders) == 10  # original, and rgb, latent, joint at three rates
    for folder in folders:
      meta = json.loads((folder / inference.META_FILE).read_text())
      if meta["codec"]:
        assert zoo.make_codec(meta["codec"]).weights_id.hex() == meta["codec_weights_id"], folder
