"""L3C and the PixelCNN baseline: bit-exact coding at any size (tiles included), streams that match the
model's bits, gradients that reach the learned representations, losses that fall, and clear errors."""

import csv
import dataclasses
from pathlib import Path

import ml_collections
import numpy as np
import pytest
from flax import nnx

from compzoo import bitstream, cli, exports, models, zoo
from compzoo.codecs.learned import LearnedCodec
from compzoo.data.images import embedded_images
from compzoo.errors import BitstreamError, UsageError
from compzoo.models import l3c as l3c_lib
from compzoo.models.l3c import L3C
from compzoo.models.pixelcnn import PixelCNN
from compzoo.train.loop import train_and_evaluate

KINDS = {"l3c": dict(auxiliary="learned"), "l3c-rgb": dict(auxiliary="rgb"),
         "l3c-rgb-shared": dict(auxiliary="rgb", shared_predictor=True)}
SHAPES = [(1, 1), (2, 3), (7, 13), (8, 8), (33, 50), (64, 17), (40, 9)]


def _tiny_l3c(kind="l3c", seed=0):
  return L3C(features=8, blocks=1, components=3, rngs=nnx.Rngs(seed), **KINDS[kind])


@nnx.jit
def _total_bits(model, images):
  return model(images).total_bits()


def _codec(tmp_path, model_config, name):
  config = ml_collections.ConfigDict(dict(model=model_config, objective=dict(name="lossless")))
  exports.write(tmp_path, config, models.build(config.model))
  return LearnedCodec.from_path(tmp_path, name=name)


@pytest.fixture(scope="module", params=sorted(KINDS))
def l3c_codec(request, tmp_path_factory):
  model_config = dict(name="l3c", features=8, blocks=1, components=3, **KINDS[request.param])
  return _codec(tmp_path_factory.mktemp(request.param), model_config, request.param)


@pytest.mark.slow
@pytest.mark.parametrize("shape", SHAPES)
def test_l3c_is_bit_exact_at_any_size(l3c_codec, shape, rng):
  image = rng.integers(0, 256, shape + (3,), dtype=np.uint8)
  assert np.array_equal(l3c_codec.decompress(l3c_codec.compress(image)), image)


def test_l3c_is_bit_exact_on_a_photo_across_tiles(monkeypatch, astronaut):
  """Tiles of 16 pixels: a 37x53 crop becomes 3x4 tiles of uneven sizes, each padded inside."""
  monkeypatch.setattr(l3c_lib, "TILE", 16)
  assert len(l3c_lib.tiles((37, 53))) == 12
  model = _tiny_l3c()
  image = np.ascontiguousarray(astronaut[50:87, 100:153])
  streams, _ = model.encode_image(image)
  decoded, _ = model.decode_image(streams, image.shape)
  assert np.array_equal(decoded, image)


def test_tiles_cover_the_image_once_within_the_limit():
  for hw in [(1, 1), (1024, 1024), (1025, 3), (2000, 1500), (4100, 700)]:
    covered = np.zeros(hw, int)
    for rows, cols in l3c_lib.tiles(hw):
      assert rows.stop - rows.start <= l3c_lib.TILE and cols.stop - cols.start <= l3c_lib.TILE
      covered[rows, cols] += 1
    assert (covered == 1).all()


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_stream_matches_the_models_bits(kind, astronaut):
  model = _tiny_l3c(kind)
  image = np.ascontiguousarray(astronaut[:64, :96])
  streams, _ = model.encode_image(image)
  estimated = float(_total_bits(model, image[None])[0])
  assert abs(8 * len(streams[0]) - estimated) < 0.01 * estimated + 64


def test_coded_parts_match_the_models_bits_per_scale_and_channel(astronaut):
  """What `compzoo info --parts` and bench's parts table show: the stream's bits, split where each scale
  was coded, agree with the model's own bits of that scale; bit_maps splits x into R, G|R, B|R,G."""
  model = _tiny_l3c()
  image = np.ascontiguousarray(astronaut[:64, :96])
  parts = {}
  streams, _ = model.encode_image(image, parts=parts)
  maps, _ = nnx.jit(lambda m, x: m.bit_maps(x))(model, image[None])
  assert list(parts) == ["z3", "z2", "z1", "x"] and maps["x"].shape == (1, 64, 96, 3)
  for name, bits in parts.items():
    estimated = float(maps[name].sum())
    assert abs(bits - estimated) < 0.01 * estimated + 64, name
  assert abs(sum(parts.values()) - 8 * len(streams[0])) <= 64


def test_rgb_pyramid_holds_rounded_means_of_the_scale_below(astronaut):
  model = _tiny_l3c("l3c-rgb")
  image = astronaut[:32, :32].astype(np.float32)
  pyramid = [np.asarray(s) for s in model._pyramid(image[None])]
  assert [p.shape[1] for p in pyramid] == [32, 16, 8, 4]
  for fine, coarse in zip(pyramid[:-1], pyramid[1:]):
    means = fine[0].reshape(coarse.shape[1], 2, coarse.shape[2], 2, 3).mean(axis=(1, 3))
    assert np.array_equal(coarse[0], np.round(means))


def test_gradients_reach_every_encoder_through_soft_to_hard(astronaut):
  model = _tiny_l3c("l3c")
  image = astronaut[:32, :32][None].astype(np.float32)
  grads = nnx.jit(nnx.grad(lambda m: m(image).total_bits().sum()))(model)
  for s in range(model.scales):
    kernel = grads.encoders[s].down.kernel[...]
    assert np.abs(kernel).max() > 0, f"E({s + 1}) gets no gradient"


def test_bits_are_reported_per_scale(astronaut):
  bits = nnx.jit(lambda model, x: model(x).bits)(_tiny_l3c(), astronaut[:32, :32][None])
  assert set(bits) == {"x", "z1", "z2", "z3"}
  # z(3) is uniform: C * (H/8) * (W/8) * log2(L) bits exactly.
  assert float(bits["z3"][0]) == pytest.approx(5 * 4 * 4 * np.log2(25), rel=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("model", [dict(name="l3c", features=8, blocks=1, components=3),
                                   dict(name="pixelcnn", features=8, layers=3, components=3)])
def test_training_lowers_the_loss(model, tmp_path):
  train_and_evaluate(_lossless_config(model, steps=40), tmp_path, progress=False)
  with open(tmp_path / "metrics.csv") as f:
    losses = [float(row["loss"]) for row in csv.DictReader(f)]
  assert len(losses) == 40
  assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 1.0, losses


def _lossless_config(model, steps):
  return ml_collections.ConfigDict(dict(
      model=model, objective=dict(name="lossless", channels=3),
      data=dict(source="embedded", crop=32, batch_size=4),
      optimizer=dict(name="adam", learning_rate=3e-3, schedule="constant", warmup=0, clip=1.0),
      train=dict(steps=steps, seed=0, log_every=1, eval_every=steps, checkpoint_every=steps, eval_images=2)))


def test_bad_settings_and_shapes_are_usage_errors():
  with pytest.raises(UsageError, match="shared_predictor"):
    L3C(auxiliary="learned", shared_predictor=True, rngs=nnx.Rngs(0))
  with pytest.raises(UsageError, match="auxiliary"):
    L3C(auxiliary="yuv", rngs=nnx.Rngs(0))
  with pytest.raises(UsageError, match="divisible by 8"):
    _tiny_l3c()(np.zeros((1, 12, 16, 3), np.float32))


def test_damaged_l3c_streams_are_bitstream_errors(l3c_codec, astronaut):
  image = np.ascontiguousarray(astronaut[:24, :40])
  container = bitstream.unpack(l3c_codec.compress(image))
  stream = container.streams[0]
  for damaged in [(stream[: len(stream) // 2],), (stream, stream), (bytes(len(stream)),)]:
    payload = bitstream.pack(dataclasses.replace(container, streams=damaged))
    with pytest.raises(BitstreamError):
      l3c_codec.decompress(payload)
  # A header claiming a huge image is refused at once: the top scale's fixed cost does not fit the stream.
  huge = bitstream.pack(dataclasses.replace(container, shape=(9000, 9000, 3)))
  with pytest.raises(BitstreamError, match="cannot hold a 9000x9000 image"):
    l3c_codec.decompress(huge)


# PixelCNN: causal, exact, one window per pixel.

def test_pixelcnn_parameters_depend_only_on_earlier_pixels(rng):
  model = PixelCNN(features=8, layers=3, components=2, rngs=nnx.Rngs(0))
  r = model.radius
  pad = lambda x: np.pad(x / 127.5 - 1, ((0, 0), (r, 0), (r, r), (0, 0)))
  image = rng.integers(0, 256, (1, 12, 14, 3)).astype(np.float32)
  changed = image.copy()
  changed[0, 5, 7] = 255 - changed[0, 5, 7]
  moved = np.abs(np.asarray(model._params(pad(image))) - np.asarray(model._params(pad(changed)))).max(axis=(3, 4))[0]
  raster = np.arange(12 * 14).reshape(12, 14)
  assert not moved[raster <= 5 * 14 + 7].any()  # the pixel itself and every earlier one
  assert moved[5, 8] > 0 and moved[6, 7] > 0  # its neighbours to the right and below see it


@pytest.mark.parametrize("shape", [(1, 1), (5, 9), (11, 4)])
def test_pixelcnn_is_bit_exact(tmp_path, shape, rng):
  codec = _codec(tmp_path, dict(name="pixelcnn", features=8, layers=3, components=2), "pixelcnn")
  image = rng.integers(0, 256, shape + (3,), dtype=np.uint8)
  payload = codec.compress(image)
  assert np.array_equal(codec.decompress(payload), image)
  estimated = float(_total_bits(codec.model, image[None])[0])
  assert 8 * len(bitstream.unpack(payload).streams[0]) < estimated + 64


DATA = Path(__file__).resolve().parent / "data"


@pytest.mark.parametrize("name, rows, cols", [("l3c", slice(40, 63), slice(50, 81)), ("pixelcnn", slice(40, 45), slice(50, 56))])
def test_files_of_the_old_coding_are_refused_in_one_line(name, rows, cols, tmp_path, capsys):
  """tests/data holds files the shipped l3c and pixelcnn wrote with compzoo 0.1 (full float tables
  quantized on the host) from a crop of the first embedded photo. Their tables changed in 0.2 while the
  weights did not: the file's weights id says so, and the decoder refuses it by name."""
  old = DATA / f"{name}-written-by-0.1.czoo"
  codec = zoo.make_codec(name)
  # l3c's weights changed since (issue #32): its superseded.json names the weights and the coding.
  why = "written with the l3c weights shipped from issue #17 to issue #32, coded as compzoo 0.1 did" \
      if name == "l3c" else "written by compzoo 0.1"
  with pytest.raises(BitstreamError, match=why):
    codec.decompress(old.read_bytes())
  assert cli.main(["decompress", str(old), str(tmp_path / "out.png")]) == 1
  err = capsys.readouterr().err
  assert err.count("\n") == 1 and why in err
  image = np.ascontiguousarray(list(embedded_images().values())[0][rows, cols])
  data = codec.compress(image)
  assert np.array_equal(codec.decompress(data), image)
  assert bitstream.unpack(data).weights_id != bitstream.unpack(old.read_bytes()).weights_id


def test_files_of_superseded_weights_are_refused_by_name(tmp_path, astronaut):
  """Shipping new weights lists the old id in superseded.json: their files are refused, saying which weights."""
  config = ml_collections.ConfigDict(dict(model=dict(name="l3c", features=8, blocks=1, components=3),
                                          objective=dict(name="lossless")))
  exports.write(tmp_path / "old", config, models.build(config.model, seed=0))
  old = LearnedCodec.from_path(tmp_path / "old", name="l3c")
  data = old.compress(np.ascontiguousarray(astronaut[:16, :24]))
  exports.write(tmp_path / "new", config, models.build(config.model, seed=1))
  (tmp_path / "new" / exports.SUPERSEDED_FILE).write_text(f'{{"{old.weights_id.hex()}": "the first weights"}}')
  new = LearnedCodec.from_path(tmp_path / "new", name="l3c")
  with pytest.raises(BitstreamError, match="written with the first weights, which this build .* replaced"):
    new.decompress(data)
  (tmp_path / "new" / exports.SUPERSEDED_FILE).write_text("[1, 2]")
  with pytest.raises(UsageError, match="superseded.json: unreadable"):
    LearnedCodec.from_path(tmp_path / "new", name="l3c")
