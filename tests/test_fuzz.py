"""1,000 damaged files per codec: only BitstreamError, never another exception, a hang or a wrong lossless
image. experiments/fuzz_bitstreams.py runs the long version."""

import numpy as np
import pytest

from compzoo import zoo
from compzoo.bench.fuzz import fuzz_codec

CODECS = ["png", "webp-lossless", "jpeg2000-lossless", "jpegxl-lossless",
          "jpeg", "webp", "avif", "jpeg2000", "jpegxl", "bmshj2018-factorized",
          "l3c", "cpm-mid"]


@pytest.fixture(scope="module")
def image():
  import skimage.data

  return np.ascontiguousarray(skimage.data.coffee()[40:88, 100:164])


@pytest.mark.parametrize("name", CODECS)
def test_damaged_files_raise_only_bitstream_errors(name, image):
  stats = fuzz_codec(zoo.make_codec(name), image, cases=1000, seed=7)
  assert stats.cases == 1000
  assert stats.rejected >= 990  # only no-op damage (e.g. a zero run over zeros) may decode


@pytest.mark.parametrize("name", CODECS)
def test_damaged_payloads_behind_valid_checksums(name, image):
  fuzz_codec(zoo.make_codec(name), image, cases=150, seed=11, rewrap=True)
