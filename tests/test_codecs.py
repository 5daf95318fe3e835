import numpy as np
import pytest

from compzoo import bitstream, data, zoo
from compzoo.codecs import Codec
from compzoo.errors import BitstreamError, UsageError

LOSSLESS = ["png", "webp-lossless", "jpeg2000-lossless", "jpegxl-lossless"]
LOSSY = ["jpeg:quality=75", "webp:quality=75", "avif:quality=50", "jpeg2000:psnr=35", "jpegxl:distance=1"]
ODD_SHAPES = [(1, 1), (1, 7), (2, 1), (3, 5), (17, 33), (257, 131)]


@pytest.mark.parametrize("name", LOSSLESS)
@pytest.mark.parametrize("shape", ODD_SHAPES)
def test_lossless_exact_on_random_images(name, shape, rng):
  codec = zoo.make_codec(name)
  for image in (rng.integers(0, 256, shape + (3,), dtype=np.uint8),
                np.broadcast_to(rng.integers(0, 256, (1, 1, 3), dtype=np.uint8), shape + (3,))):
    np.testing.assert_array_equal(codec.decompress(codec.compress(image)), image)


@pytest.mark.parametrize("name", LOSSLESS)
def test_lossless_exact_on_kodak(name, kodak_dir):
  codec = zoo.make_codec(name)
  for path in data.list_images(kodak_dir)[::4]:  # six photos, both orientations (kodim09, kodim17)
    image = data.load_image(path)
    assert np.array_equal(codec.decompress(codec.compress(image)), image), path.name


@pytest.mark.parametrize("name", LOSSY)
def test_lossy_codecs_keep_shape_and_quality(name, astronaut):
  codec = zoo.make_codec(name)
  decoded = codec.decompress(codec.compress(astronaut))
  assert decoded.shape == astronaut.shape and decoded.dtype == np.uint8
  mse = np.mean((decoded.astype(float) - astronaut) ** 2)
  assert 10 * np.log10(255**2 / mse) > 28


def test_quality_parameter_moves_the_rate(astronaut):
  sizes = [len(zoo.make_codec(f"jpeg:quality={q}").compress(astronaut)) for q in (20, 50, 90)]
  assert sizes[0] < sizes[1] < sizes[2]


def test_file_from_another_codec_is_refused(astronaut):
  payload = zoo.make_codec("png").compress(astronaut[:8, :8])
  with pytest.raises(BitstreamError, match="written by codec 'png'"):
    zoo.make_codec("webp-lossless").decompress(payload)


@pytest.mark.parametrize("image", [np.zeros((4, 4), np.uint8), np.zeros((4, 4, 4), np.uint8),
                                   np.zeros((4, 4, 3), np.float32), np.zeros((0, 4, 3), np.uint8)])
def test_bad_images_are_usage_errors(image):
  with pytest.raises(UsageError):
    zoo.make_codec("png").compress(image)


@pytest.mark.parametrize("spec, message", [
    ("nope", "unknown codec"), ("jpeg:quality", "key=value"), ("jpeg:quality=abc", "expected int"),
    ("jpeg:quality=101", "outside"), ("jpeg:speed=3", "no parameter"), ("jpeg:quality=5:quality=6", "twice"),
    ("", "empty codec name"), ("png:level=3", "no parameter"),
])
def test_bad_codec_names(spec, message):
  with pytest.raises(UsageError, match=message):
    zoo.make_codec(spec)


def test_canonical_names_spell_out_defaults():
  assert zoo.make_codec("jpeg").name == "jpeg:quality=75"
  assert zoo.make_codec("jpeg2000:psnr=30").name == "jpeg2000:psnr=30.0"
  assert zoo.make_codec("png").name == "png"


class _LabelMapCodec(Codec):
  """A codec that needs a label map beside the image (as selective generative compression will)."""

  side_inputs = ("label_map",)

  def encode_streams(self, image, label_map):
    return [image.tobytes(), label_map.tobytes()], None

  def decode_streams(self, streams, shape):
    return np.frombuffer(streams[0], np.uint8).reshape(shape), None


def test_side_data_reaches_codecs_that_take_it_and_is_refused_by_the_others(astronaut):
  image = np.ascontiguousarray(astronaut[:6, :5])
  labels = np.arange(30, dtype=np.int64).reshape(6, 5)
  codec = _LabelMapCodec("label-map-test", lossless=True)
  payload = codec.compress(image, label_map=labels)
  assert bitstream.unpack(payload).streams[1] == labels.astype(np.uint8).tobytes()
  assert np.array_equal(codec.decompress(payload), image)
  for bad, message in ((None, "needs a label_map"), (labels[:5], "like the image"), (labels * 20, "ids must")):
    with pytest.raises(UsageError, match=message):
      codec.compress(image, **({} if bad is None else {"label_map": bad}))
  with pytest.raises(UsageError, match="takes no label_map"):
    zoo.make_codec("png").compress(image, label_map=labels)
  with pytest.raises(UsageError, match="takes no depth"):
    codec.compress(image, label_map=labels, depth=labels)
