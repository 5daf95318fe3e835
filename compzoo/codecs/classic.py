"""Classic codecs through imagecodecs, registered in the zoo for comparison with learned ones.

Each payload is the format's own file. Its header's size is read (compzoo/image_headers.py) and must equal
the container's before the library decoder runs: the decoders trust their headers and allocate what
they claim.

Settings aim at each format's strongest practical mode, so learned codecs are compared with a fair
baseline: PNG at zlib level 9, lossless WebP at method 6 (quality 100 is 30x slower and no smaller), reversible JPEG 2000 with the colour
transform, lossless JPEG XL at effort 7, optimized-Huffman JPEG, AVIF at speed 6.
"""

from __future__ import annotations

import imagecodecs
import numpy as np

from compzoo import bitstream, image_headers, jpeg
from compzoo.codecs.base import Codec
from compzoo.codecs.entries import Param, ZooEntry


class ImagecodecsCodec(Codec):
  """One payload stream holding the classic format's own file."""

  def __init__(self, name: str, lossless: bool, inner_format: str, encode, decode):
    super().__init__(name, lossless)
    self.inner_format = inner_format
    self._encode, self._decode = encode, decode

  def encode_streams(self, image):
    return [bytes(self._encode(image))], None

  def decode_streams(self, streams, shape):
    bitstream.expect_streams(streams, 1, self.name)
    image_headers.check_size(self.inner_format, streams[0], shape, self.name)
    image = np.asarray(self._decode(streams[0]))
    if image.ndim == 3 and image.shape[2] == 4:  # a format that decodes to RGBA when alpha is opaque
      image = image[..., :3]
    return image, None


ENTRIES = []  # collected by compzoo/zoo.py


def _entry(name, description, lossless, inner_format, encode, decode, params=None, sweep=()):
  def build(canonical, **kwargs):
    return ImagecodecsCodec(canonical, lossless, inner_format, lambda image: encode(image, **kwargs), decode)
  ENTRIES.append(ZooEntry(name, description, lossless, build, params or {}, tuple(sweep)))


_entry("png", "PNG, zlib level 9", True, "png",
       lambda x: imagecodecs.png_encode(x, level=9), imagecodecs.png_decode)
_entry("webp-lossless", "WebP lossless, method 6, quality 75", True, "webp",
       lambda x: imagecodecs.webp_encode(x, level=75, lossless=True, method=6), imagecodecs.webp_decode)
_entry("jpeg2000-lossless", "JPEG 2000 reversible 5/3 wavelet with colour transform", True, "jpeg2000",
       lambda x: imagecodecs.jpeg2k_encode(x, level=0, reversible=True, mct=True), imagecodecs.jpeg2k_decode)
_entry("jpegxl-lossless", "JPEG XL lossless, effort 7", True, "jpegxl",
       lambda x: imagecodecs.jpegxl_encode(x, lossless=True, effort=7), imagecodecs.jpegxl_decode)
_entry("jpeg", "JPEG (libjpeg), 4:2:0, optimized Huffman", False, "jpeg",
       jpeg.encode, jpeg.decode,
       {"quality": Param(int, 75, 0, 100)}, [{"quality": q} for q in (10, 20, 30, 40, 50, 60, 70, 80, 90, 95)])
_entry("webp", "WebP lossy, method 6", False, "webp",
       lambda x, quality: imagecodecs.webp_encode(x, level=quality, lossless=False, method=6),
       imagecodecs.webp_decode,
       {"quality": Param(int, 75, 0, 100)}, [{"quality": q} for q in (10, 20, 30, 40, 50, 60, 70, 80, 90, 95)])
_entry("avif", "AVIF (libavif/aom), speed 6", False, "avif",
       lambda x, quality: imagecodecs.avif_encode(x, level=quality, speed=6), imagecodecs.avif_decode,
       {"quality": Param(int, 50, 0, 100)}, [{"quality": q} for q in (10, 20, 30, 40, 50, 60, 70, 80, 90)])
_entry("jpeg2000", "JPEG 2000 irreversible 9/7 wavelet at a target PSNR", False, "jpeg2000",
       lambda x, psnr: imagecodecs.jpeg2k_encode(x, level=psnr, reversible=False), imagecodecs.jpeg2k_decode,
       {"psnr": Param(float, 35.0, 15.0, 70.0)}, [{"psnr": p} for p in (22, 24, 26, 28, 30, 32, 34, 36, 38, 40, 42)])
_entry("jpegxl", "JPEG XL lossy (VarDCT) at a Butteraugli distance, effort 7", False, "jpegxl",
       lambda x, distance: imagecodecs.jpegxl_encode(x, distance=distance, effort=7), imagecodecs.jpegxl_decode,
       {"distance": Param(float, 1.0, 0.05, 25.0)}, [{"distance": d} for d in (8, 6, 4, 3, 2, 1.5, 1, 0.7, 0.5)])
