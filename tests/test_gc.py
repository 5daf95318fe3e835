"""Generative compression, GC and SC (compzoo/models/gc.py): the adversarial step updates the generator and
the discriminator groups as intended, the tiny configs train, exports hold no discriminator, and files of
odd sizes (SC's with their label maps) round-trip to the decoder's output, bit for bit and run after run;
SC codes no latent where everything is synthesized; bad input fails clearly."""

import jax
import numpy as np
import pytest
from flax import nnx
from flax import serialization

from compzoo import exports, models, zoo
from compzoo.codecs.learned import LearnedCodec
from compzoo.errors import BitstreamError, UsageError
from compzoo.train.adversarial import _GAN_LOSSES, _scale_mean
from compzoo.train.registry import make_objective
from experiments.configs import gc
from train_helpers import run_steps


SKY, ROAD, CAR = 0, 3, 8


def _scenes(i, n=2, size=64):
  """Toy street scenes with their label maps: a sky band over a road band, each a random flat colour,
  and a dark car."""
  rng = np.random.default_rng(i)
  images = np.zeros((n, size, size, 3), np.uint8)
  labels = np.zeros((n, size, size), np.int32)
  for image, label in zip(images, labels):
    horizon = rng.integers(size // 4, 3 * size // 4)
    image[:horizon], label[:horizon] = rng.integers(120, 255, 3), SKY
    image[horizon:], label[horizon:] = rng.integers(0, 120, 3), ROAD
    top, left = rng.integers(0, size - 8, 2)
    image[top:top + 8, left:left + 8], label[top:top + 8, left:left + 8] = 20, CAR
  return {"image": images, "label_map": labels}


def _train(variant, steps, model, **objective):
  config = gc.get_config(variant)
  optimizer = dict(config.optimizer, learning_rate=2e-3, warmup=0, schedule="constant")
  return run_steps(model, make_objective(dict(config.objective, **objective)), optimizer, _scenes, steps)


def _leaves(module):
  return jax.tree.map(np.array, nnx.to_pure_dict(nnx.state(module)))


def _changed(before, after):
  return jax.tree.leaves(jax.tree.map(lambda a, b: not np.array_equal(a, b), before, after))


def test_least_squares_loss_and_scale_averaging():
  real, fake, generator = _GAN_LOSSES["least_squares"]
  assert float(real(np.float32(1.0))) == 0.0 and float(fake(np.float32(0.0))) == 0.0
  assert float(generator(np.float32(0.0))) == 1.0
  # two scales of 4 and 1 patches weigh the same: (mean 1 + mean 3) / 2
  assert float(_scale_mean(lambda x: x, [np.ones((1, 2, 2)), np.full((1, 1, 1), 3.0)])) == 2.0


@pytest.fixture(scope="module")
def trained():
  """tiny-gc: the parameters before, after one step and after 40 steps, and the 40 steps' metrics (the
  later run_steps reuses the first's compiled step)."""
  model = models.build(dict(gc.get_config("tiny-gc").model), seed=1)
  before = _leaves(model)
  model, first = _train("tiny-gc", 1, model)
  after_one = _leaves(model)
  model, history = _train("tiny-gc", 40, model)
  return model, before, after_one, first + history


def test_groups_split_the_parameters_between_generator_and_discriminator():
  model = models.build(dict(gc.get_config("tiny-gc").model), seed=1)
  groups = make_objective(gc.get_config("tiny-gc").objective).groups()
  sizes = {name: len(jax.tree.leaves(nnx.state(model, wrt))) for name, wrt in groups.items()}
  assert sizes["generator"] + sizes["discriminator"] == len(jax.tree.leaves(nnx.state(model, nnx.Param)))
  assert sizes["discriminator"] == len(jax.tree.leaves(nnx.state(model.discriminator, nnx.Param)))


def test_one_adversarial_step_updates_both_groups(trained):
  model, before, after, history = trained
  logits, features = model.discriminator(_scenes(0)["image"])
  assert [l.shape for l in logits] == [(2, 8, 8), (2, 4, 4), (2, 2, 2)] and len(features) == 12
  assert {"discriminator_loss", "adversarial", "feature_matching", "distortion"} <= set(history[0])
  for part in ("generator", "discriminator", "encoder", "code_logits"):  # every tensor of every part moved
    assert all(_changed(before[part], after[part])), part


def test_tiny_gc_trains(trained):
  model, _, _, history = trained
  assert all(np.isfinite(float(h["loss"])) for h in history)
  matching = [float(h["feature_matching"]) for h in history]
  assert np.mean(matching[-5:]) < 0.7 * np.mean(matching[:5]), matching
  assert float(history[-1]["bpp"]) <= model.nominal_bpp() + 1e-6  # the tables learn the symbol frequencies


def test_tiny_sc_trains_with_its_label_maps():
  """On MSE, to keep the compile short: SC's adversarial step is the GC one with a conditional
  discriminator, which tests/test_configs.py steps at every size."""
  model = models.build(dict(gc.get_config("tiny-sc").model), seed=2)
  optimizer = dict(gc.get_config("tiny-sc").optimizer, learning_rate=2e-3)
  objective = make_objective(dict(name="rate_distortion", lmbda=1.0, distortion="mse"))
  model, history = run_steps(model, objective, optimizer, _scenes, 30)
  distortion = [float(h["distortion"]) for h in history]
  assert np.mean(distortion[-5:]) < 0.7 * np.mean(distortion[:5]), distortion
  assert float(history[-1]["bpp"]) < 0.7 * float(history[0]["bpp"])  # the label-map table learns the maps


def _codec(tmp_path, variant="tiny-gc", **settings) -> LearnedCodec:
  config = gc.get_config(variant)
  config.model.update(settings)
  model = models.build(config.model, seed=3)
  path = exports.write(tmp_path / variant, config, model)
  return LearnedCodec.from_path(path, name=f"{variant}-test")


@pytest.mark.parametrize("noise_channels", [0, 2])
def test_sc_files_with_label_maps_round_trip_on_odd_sizes(tmp_path, noise_channels):
  codec = _codec(tmp_path, "tiny-sc", noise_channels=noise_channels)
  assert codec.side_inputs == ("label_map",) and not hasattr(codec.model, "discriminator")
  scenes = _scenes(7, 1, 96)
  for height, width in ((37, 53), (90, 17)):
    image, labels = scenes["image"][0, :height, :width], scenes["label_map"][0, :height, :width].astype(np.uint8)
    data = codec.compress(image, label_map=labels)
    assert data == codec.compress(image, label_map=labels)
    decoded = codec.decompress(data)
    np.testing.assert_array_equal(decoded, codec.decompress(data))
    np.testing.assert_array_equal(decoded, codec.model.reconstruct(image, labels))
  with pytest.raises(UsageError, match="label_map"):
    codec.compress(image)
  with pytest.raises(UsageError, match="knows 12 classes"):
    codec.compress(image, label_map=np.full(image.shape[:2], 12, np.uint8))


def test_sc_codes_no_latent_where_every_class_is_synthesized(tmp_path):
  from compzoo import bitstream
  codec = _codec(tmp_path, "tiny-sc")
  scene = _scenes(8, 1)
  image, labels = scene["image"][0], scene["label_map"][0].astype(np.uint8)
  streams = bitstream.unpack(codec.compress(image, label_map=labels)).streams
  all_synthesized = np.where(labels == CAR, ROAD, labels).astype(np.uint8)  # sky and road only: both synthesized
  empty = bitstream.unpack(codec.compress(image, label_map=all_synthesized)).streams
  assert len(empty[1]) < len(streams[1]) and len(empty[1]) <= 4  # the range coder's one word at most
  # what is synthesized comes from the label map alone: the image does not change it
  other = np.full_like(image, 128)
  np.testing.assert_array_equal(codec.model.reconstruct(image, all_synthesized),
                                codec.model.reconstruct(other, all_synthesized))


def test_the_classes_sc_synthesizes_are_chosen_at_coding_time(tmp_path):
  from compzoo import bitstream
  codec = _codec(tmp_path, "tiny-sc")
  scene = _scenes(9, 1)
  image, labels = scene["image"][0], scene["label_map"][0].astype(np.uint8)
  code_bytes = {}
  for classes in ((), (SKY,), (SKY, ROAD)):
    codec.model.choose_synthesized(classes)
    assert codec.model.synthesized_classes == classes
    data = codec.compress(image, label_map=labels)
    code_bytes[classes] = len(bitstream.unpack(data).streams[1])
    np.testing.assert_array_equal(codec.decompress(data), codec.model.reconstruct(image, labels))
  assert code_bytes[()] > code_bytes[(SKY,)] > code_bytes[(SKY, ROAD)]  # the more synthesized, the fewer bits
  with pytest.raises(UsageError, match="synthesized classes"):
    codec.model.choose_synthesized((12,))


def test_the_synthesize_parameter_names_classes_canonically():
  from compzoo.codecs.catalogue import SC_SYNTHESIZE
  assert SC_SYNTHESIZE.parse("synthesize", "Tree+sky") == "sky+tree"
  assert SC_SYNTHESIZE.ids("sky+road+tree") == (SKY, ROAD, 5) and SC_SYNTHESIZE.parse("s", "none") == "none"
  for bad in ("sky+cow", "sky++road", "", "sky,road"):
    with pytest.raises(UsageError, match="class names joined by"):
      SC_SYNTHESIZE.parse("synthesize", bad)


def test_the_export_holds_no_discriminator(tmp_path):
  codec = _codec(tmp_path)
  params = serialization.msgpack_restore((codec.weights_path / exports.PARAMS_FILE).read_bytes())
  assert "discriminator" not in params and {"encoder", "generator", "code_logits"} <= set(params)
  assert not hasattr(codec.model, "discriminator")


@pytest.mark.parametrize("noise_channels", [0, 2])
def test_odd_sizes_round_trip_to_the_decoders_output_run_after_run(tmp_path, noise_channels):
  codec = _codec(tmp_path, noise_channels=noise_channels)
  rng = np.random.default_rng(4)
  for height, width in ((37, 53), (1, 3)):  # odd sides: padded to 16s, cropped back
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    data = codec.compress(image)
    assert data == codec.compress(image)
    decoded = codec.decompress(data)
    assert decoded.shape == image.shape
    np.testing.assert_array_equal(decoded, codec.decompress(data))
    np.testing.assert_array_equal(decoded, codec.model.reconstruct(image))


def test_noise_comes_from_the_seed_in_the_file(tmp_path):
  from compzoo import bitstream
  codec = _codec(tmp_path, noise_channels=4)
  image = _scenes(5, 1)["image"][0]
  streams = bitstream.unpack(codec.compress(image)).streams
  assert len(streams) == 2 and len(streams[0]) == 4
  same, _ = codec.model.decode_image(streams, image.shape, codec.prepared)
  other, _ = codec.model.decode_image((b"\x00\x00\x00\x07", streams[1]), image.shape, codec.prepared)
  np.testing.assert_array_equal(same, codec.model.reconstruct(image))
  assert not np.array_equal(other, same)  # another seed, other noise, another picture


def test_bad_files_and_shapes_fail_clearly(tmp_path):
  codec = _codec(tmp_path)
  data = codec.compress(_scenes(6, 1)["image"][0])
  with pytest.raises(BitstreamError):
    codec.decompress(data[:-3])
  with pytest.raises(UsageError, match="multiples of 16"):
    codec.model(np.zeros((1, 40, 40, 3), np.uint8))
  with pytest.raises(UsageError, match="at least 64"):
    codec_model = models.build(dict(gc.get_config("tiny-gc").model))
    codec_model.discriminator(np.zeros((1, 48, 48, 3), np.uint8))
  with pytest.raises(UsageError, match="code_channels"):
    models.build(dict(name="gc", code_channels=0))


def test_damaged_sc_files_and_huge_claims_fail_as_bitstream_errors(tmp_path):
  from compzoo.bench.fuzz import check_crafted_headers, fuzz_codec
  codec = _codec(tmp_path, "tiny-sc")
  image = _scenes(9, 1)["image"][0]
  fuzz_codec(codec, image, cases=60, seed=3)
  fuzz_codec(codec, image, cases=60, seed=4, rewrap=True)
  messages = [message for _, _, message in check_crafted_headers(codec, image, seconds=2.0)]
  assert any("over the limit" in m for m in messages) and any("cannot hold" in m for m in messages), messages


SHIPPED = [name for entry in ("gc", "gc-mse", "sc") for name in zoo.sweep_names(zoo.get(entry))]


@pytest.fixture(scope="module")
def street():
  """A CamVid test frame cropped to an odd size (not a multiple of 16), with its label map."""
  from compzoo.data.images import load_image, load_label_map
  from conftest import SHARED
  root = SHARED / "data" / "camvid" / "test"
  if not root.is_dir():
    pytest.skip(f"CamVid not found at {root}")
  frame = sorted((root / "images").glob("*.png"))[0]
  return load_image(frame)[11:108, 5:186], load_label_map(root / "labels" / frame.name)[11:108, 5:186]


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_entries_round_trip_through_the_cli_on_odd_sizes(name, street, tmp_path):
  from PIL import Image
  from compzoo import cli
  image, labels = street
  Image.fromarray(image).save(tmp_path / "frame.png")
  Image.fromarray(labels).save(tmp_path / "labels.png")
  codec = zoo.make_codec(name)
  side = ["--label-map", str(tmp_path / "labels.png")] if codec.side_inputs else []
  decoded = []
  for run in range(2):
    packed, restored = tmp_path / f"{run}.czoo", tmp_path / f"{run}.png"
    assert cli.main(["compress", "-m", name, *side, str(tmp_path / "frame.png"), str(packed)]) == 0
    assert cli.main(["decompress", str(packed), str(restored)]) == 0
    decoded.append((packed.read_bytes(), np.asarray(Image.open(restored))))
  assert decoded[0][0] == decoded[1][0]
  np.testing.assert_array_equal(decoded[0][1], decoded[1][1])
  expected = codec.model.reconstruct(image, labels) if codec.side_inputs else codec.model.reconstruct(image)
  np.testing.assert_array_equal(decoded[0][1], expected)
  assert 8 * len(decoded[0][0]) / image[..., 0].size < 0.5  # extreme rates, header and label map included
