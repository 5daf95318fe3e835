"""Learned codecs: a trained model bound to its weights, coding through the model's ``CodingModel`` methods.

Shipped weights live in compzoo/weights/<entry>/<point>/ (config.json + params.msgpack, see
compzoo/train/checkpoint.py) and load with no download; ``LearnedCodec.from_path`` also takes any training
workdir or export. The weights id written into every file is a hash of the weights, so a file decodes only
with the weights that wrote it.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from compzoo import zoo
from compzoo.codecs.base import Codec
from compzoo.errors import UsageError

WEIGHTS_ROOT = Path(__file__).resolve().parent.parent / "weights"


class LearnedCodec(Codec):
  def __init__(self, model, weights_id: bytes, lossless: bool, name: str):
    for method in ("prepare_coding", "encode_image", "decode_image"):
      if not hasattr(model, method):
        raise UsageError(f"model {type(model).__name__} cannot code images: it has no {method}()")
    self.model = model
    self.weights_id = weights_id
    self.lossless = lossless
    self.name = name
    self._tables = model.prepare_coding()  # built once; encoder and decoder share them

  @classmethod
  def from_path(cls, path, name: str = "learned", lossless: bool = False) -> "LearnedCodec":
    from compzoo.train.checkpoint import load_model  # imported here: it pulls in orbax
    _, model, weights_id = load_model(path)
    return cls(model, weights_id, lossless, name)

  def encode_streams(self, image: np.ndarray):
    return self.model.encode_image(image, self._tables)

  def decode_streams(self, streams, shape):
    return self.model.decode_image(streams, shape, self._tables)


def shipped(entry: str, point: str = "") -> Path:
  """The shipped export of ``entry`` (one folder per operating point for lossy entries, one for lossless)."""
  path = WEIGHTS_ROOT / entry / point
  if not path.is_dir():
    raise UsageError(f"no shipped weights at {path}; reinstall compzoo or pass a workdir")
  return path


def _bmshj2018_factorized(quality: int) -> LearnedCodec:
  path = shipped("bmshj2018-factorized", f"q{quality}")
  return LearnedCodec.from_path(path, name="bmshj2018-factorized", lossless=False)


BMSHJ2018_QUALITIES = (1, 2)

zoo.register(zoo.ZooEntry(
    name="bmshj2018-factorized",
    description="Ballé et al. 2018 factorized-prior autoencoder, MSE-trained on BSDS500 (shipped, small)",
    lossless=False,
    build=_bmshj2018_factorized,
    params={"quality": zoo.Param(int, BMSHJ2018_QUALITIES[-1], BMSHJ2018_QUALITIES[0], BMSHJ2018_QUALITIES[-1])},
    sweep=tuple({"quality": q} for q in BMSHJ2018_QUALITIES),
    checkpoint="compzoo/weights/bmshj2018-factorized",
    kind="learned",
))


def _shipped_entry(name: str, description: str, lossless: bool, family: str = "") -> None:
  """An entry with one shipped export: a lossless model, or a lossy model trained for one operating point
  (``family`` joins such entries into one RD curve)."""
  def build() -> LearnedCodec:
    return LearnedCodec.from_path(shipped(name), name=name, lossless=lossless)

  zoo.register(zoo.ZooEntry(name=name, description=description, lossless=lossless, build=build,
                            checkpoint=f"compzoo/weights/{name}", kind="learned", family=family))


for _point, _rate in (("low", "lowest"), ("mid", "middle"), ("high", "highest")):
  _shipped_entry(f"cpm-{_point}", f"Context-model autoencoder (Mentzer et al. 2018), MS-SSIM trained, 3D-CNN "
                 f"context model, importance map; the {_rate} of 3 rates (shipped, small)", False, family="cpm")

_lossless_entry = functools.partial(_shipped_entry, lossless=True)
_lossless_entry("l3c", "L3C (Mentzer et al. 2019): hierarchical learned lossless coding, learned auxiliary "
                "representations, 3 network passes (shipped, small)")
_lossless_entry("l3c-rgb", "L3C's RGB baseline: a fixed RGB pyramid instead of learned representations")
_lossless_entry("l3c-rgb-shared", "L3C's RGB-shared baseline: RGB pyramid, one predictor for every scale")
_lossless_entry("pixelcnn", "PixelCNN: per-pixel autoregressive lossless coding, one network pass per pixel "
                "(the slow baseline)")
