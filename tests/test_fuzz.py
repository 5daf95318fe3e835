"""Damaged and crafted files: only ``BitstreamError``, never another exception, a hang or a wrong lossless
image. 1,000 damaged files per codec, payloads damaged behind valid checksums, and decompression bombs
(valid files whose header claims a huge image) for every codec. experiments/fuzz_bitstreams.py runs the
long version and prints the bombs' timings."""

import numpy as np
import pytest

from compzoo import zoo
from compzoo.codecs.learned import one_entry_per_architecture
from compzoo.bench.fuzz import LOOSE_STREAM_BOUND, check_crafted_headers, fuzz_codec

pytestmark = pytest.mark.slow  # make test-fast leaves these out

# Discovered: every classic codec, and one shipped learned entry per model architecture (the first of the
# catalogue's records that builds it, at its default point). PixelCNN is left to experiments/fuzz_bitstreams.py:
# it runs its network once per pixel, so 150 decodes of damaged payloads take minutes; L3C's coder is its coder.
SLOW_TO_DECODE = {"pixelcnn"}


# Signal codecs: tests/test_signals.py (classic) and tests/test_ecg.py (learned).
CODECS = [name for name, entry in zoo.entries().items() if entry.kind in ("classic", "fitted") and entry.modality == "image"] + [
    name for architecture, name in one_entry_per_architecture().items() if architecture not in SLOW_TO_DECODE]


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


@pytest.mark.parametrize("name", sorted(name for name, entry in zoo.entries().items()
                                         if name != "learned" and entry.modality == "image"))
def test_headers_claiming_huge_images_fail_fast_in_one_line(name, image):
  codec = zoo.make_codec(name)
  results = check_crafted_headers(codec, image, seconds=2.0)
  assert len(results) == 4 + (name not in LOOSE_STREAM_BOUND) + bool(codec.max_pixels)
  assert any("over the limit" in message for _, _, message in results)
  if zoo.get(name).kind in ("learned", "fitted"):
    assert any("cannot hold" in message for _, _, message in results)  # the stream bound, not only limits

