"""compzoo/image_headers.py reads the size every standard format declares, from the header alone, for files
of any size the libraries write; forged sizes (compzoo/bench/fuzz.py) read back as forged; damaged or
truncated headers and multi-image streams raise BitstreamError; and every codec that carries a standard
format refuses a file whose inner header disagrees with its container before the library decoder runs."""

import imagecodecs
import numpy as np
import pytest

from compzoo import image_headers, jpeg, zoo
from compzoo.bench.fuzz import check_inner_header_lies, forge_inner_size
from compzoo.errors import BitstreamError

WRITERS = {
    "png": lambda x: imagecodecs.png_encode(x),
    "jpeg": lambda x: jpeg.encode(x, 75),
    "webp": lambda x: imagecodecs.webp_encode(x, lossless=True),
    "webp-lossy": lambda x: imagecodecs.webp_encode(x, level=75, lossless=False),
    "jpeg2000": lambda x: imagecodecs.jpeg2k_encode(x, level=0, reversible=True),
    "jpegxl": lambda x: imagecodecs.jpegxl_encode(x, lossless=True, effort=1),
    "jpegxl-lossy": lambda x: imagecodecs.jpegxl_encode(x, distance=2, effort=1),
    "avif": lambda x: imagecodecs.avif_encode(x, level=50, speed=10),
}
# Odd shapes, and for JPEG XL a size for each of its header's seven aspect-ratio codes and its small form.
SHAPES = [(1, 1), (17, 23), (31, 2001), (8, 8), (80, 96), (48, 64), (64, 96), (72, 128), (64, 80), (50, 100),
          (600, 9)]


def _format(writer: str) -> str:
  return writer.split("-")[0]


@pytest.fixture(scope="module")
def files():
  rng = np.random.default_rng(5)
  images = {shape: rng.integers(0, 256, shape + (3,), dtype=np.uint8) for shape in SHAPES}
  return {(writer, shape): bytes(write(images[shape])) for writer, write in WRITERS.items() for shape in SHAPES
          if not (writer == "avif" and shape[0] * shape[1] > 10_000)}  # aom is slow on the long strip


@pytest.mark.parametrize("writer", WRITERS)
def test_the_declared_size_is_the_image_s(files, writer):
  for (name, shape), data in files.items():
    if name == writer:
      assert image_headers.declared_size(_format(writer), data) == shape, shape


@pytest.mark.parametrize("writer", WRITERS)
def test_forged_sizes_read_back(files, writer):
  data = files[(writer, (17, 23))]
  limit = 16384 if _format(writer) == "webp" else 30000  # WebP's fields have 14 bits
  for claim in [(30000, 30000), (23, 17), (18, 24), (1, 1), (4321, 1234)]:
    expected = tuple(min(side, limit - (writer == "webp-lossy")) for side in claim)
    assert image_headers.declared_size(_format(writer), forge_inner_size(_format(writer), data, *claim)) == expected


DECODERS = {"png": imagecodecs.png_decode, "jpeg": imagecodecs.jpeg8_decode, "webp": imagecodecs.webp_decode,
            "jpeg2000": imagecodecs.jpeg2k_decode, "jpegxl": imagecodecs.jpegxl_decode,
            "avif": imagecodecs.avif_decode}


@pytest.mark.parametrize("writer", WRITERS)
def test_a_forge_of_the_true_size_still_decodes(files, writer):
  """The forger edits only the size: claiming the true size gives a stream the library decodes to the same
  pixels, so a lie the fuzzer writes is a valid file in everything but its size."""
  fmt = _format(writer)
  for shape in [(17, 23), (8, 8), (1, 1)]:
    data = files[(writer, shape)]
    forged = forge_inner_size(fmt, data, *shape)
    np.testing.assert_array_equal(DECODERS[fmt](forged), DECODERS[fmt](data))


@pytest.mark.parametrize("writer", WRITERS)
def test_truncated_and_garbled_headers_raise_bitstream_errors(files, writer):
  data = files[(writer, (17, 23))]
  fmt = _format(writer)
  for end in range(min(len(data), 400)):
    try:
      image_headers.declared_size(fmt, data[:end])
    except BitstreamError:
      pass
  rng = np.random.default_rng(0)
  for _ in range(300):
    damaged = bytearray(data)
    for at in rng.integers(0, min(len(data), 200), 3):
      damaged[at] = int(rng.integers(256))
    try:
      height, width = image_headers.declared_size(fmt, bytes(damaged))
      assert height >= 0 and width >= 0
    except BitstreamError:
      pass
  with pytest.raises(BitstreamError):
    image_headers.declared_size(fmt, b"")
  with pytest.raises(BitstreamError):
    image_headers.declared_size(fmt, bytes(100))


def test_streams_of_several_images_and_unreadable_sizes_are_refused(files):
  animated_webp = b"RIFF\x16\x00\x00\x00WEBPVP8X\x0a\x00\x00\x00\x02\x00\x00\x00\x0f\x00\x00\x0f\x00\x00"
  with pytest.raises(BitstreamError, match="animation"):
    image_headers.declared_size("webp", animated_webp)
  jpeg_data = bytearray(files[("jpeg", (17, 23))])
  at = next(i for i in range(len(jpeg_data) - 1) if jpeg_data[i] == 0xFF and jpeg_data[i + 1] == 0xC0)
  jpeg_data[at + 5:at + 7] = b"\x00\x00"  # height 0: defined later by a DNL marker
  with pytest.raises(BitstreamError, match="DNL"):
    image_headers.declared_size("jpeg", bytes(jpeg_data))
  jp2 = bytearray(files[("jpeg2000", (17, 23))])
  at = bytes(jp2).index(b"ihdr") + 4
  jp2[at:at + 4] = (99).to_bytes(4, "big")  # the header box disagrees with the codestream
  with pytest.raises(BitstreamError, match="codestream"):
    image_headers.declared_size("jpeg2000", bytes(jp2))


def test_a_grey_jpeg_declares_its_size():
  grey = bytes(imagecodecs.jpeg8_encode(np.full((9, 14), 128, np.uint8)))
  assert image_headers.declared_size("jpeg", grey) == (9, 14)


CARRIERS = sorted(name for name, entry in zoo.entries().items() if not entry.needs_weights and entry.modality == "image"
                  and (entry.kind == "classic" or name == "jpeg-refine"))


@pytest.mark.parametrize("name", CARRIERS)
def test_inner_headers_that_lie_are_refused_before_decoding(name, astronaut):
  codec = zoo.make_codec(name)
  assert codec.inner_format in image_headers.FORMATS
  results = check_inner_header_lies(codec, np.ascontiguousarray(astronaut[100:140, 180:236]))
  assert len(results) == 3
  for case, _, message in results:
    assert message.startswith(codec.name.split(":")[0] + ":"), (case, message)
