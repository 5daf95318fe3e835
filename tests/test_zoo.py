"""Walks every zoo entry: it builds at its defaults and at every sweep point, round-trips an image,
keeps its name canonical, and is exact exactly when it claims to be lossless."""

from pathlib import Path

import numpy as np
import pytest

from compzoo import bitstream, zoo
from compzoo.codecs.base import parse_codec_name

ENTRIES = sorted(zoo.entries())
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def image():
  import skimage.data

  return np.ascontiguousarray(skimage.data.astronaut()[100:164, 180:276])


@pytest.mark.parametrize("name", ENTRIES)
def test_entry(name, image):
  entry = zoo.get(name)
  assert entry.description and entry.kind in ("classic", "learned")
  for spec in [name] + entry.sweep_names():
    codec = zoo.make_codec(spec)
    assert parse_codec_name(codec.name)[0] == name
    assert zoo.make_codec(codec.name).name == codec.name  # canonical names are fixed points
    payload = codec.compress(image)
    assert bitstream.unpack(payload).codec == codec.name
    decoded = codec.decompress(payload)
    assert decoded.shape == image.shape
    assert np.array_equal(decoded, image) == entry.lossless
  if not entry.lossless:  # learned entries ship one checkpoint per point, so fewer
    points = len(entry.sweep) or sum(e.curve() == entry.curve() for e in zoo.entries().values())
    assert points >= (5 if entry.kind == "classic" else 2), "lossy entries need an RD sweep or a family"
  if entry.kind == "learned":
    assert entry.checkpoint and (ROOT / entry.checkpoint).is_dir()


def test_registry_rejects_duplicates():
  entry = zoo.get("png")
  with pytest.raises(ValueError):
    zoo.register(entry)
