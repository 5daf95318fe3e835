"""Methods, one module per architecture. ``build(model_config)`` makes the module a config names.

Each module defines ``build(config, rngs) -> nnx.Module``; the module's forward pass returns an
``RDOutput`` (see compzoo/rd.py). Models that code images also implement ``CodingModel``.
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol

import ml_collections
import numpy as np
from flax import nnx

from compzoo.errors import UsageError

ARCHITECTURES = {
    "bmshj2018_factorized": "compzoo.models.bmshj2018",
    "cpm": "compzoo.models.cpm",
    "l3c": "compzoo.models.l3c",
    "pixelcnn": "compzoo.models.pixelcnn",
}


class CodingModel(Protocol):
  """What a learned ``Codec`` needs from a model: tables built once, then image <-> streams."""

  def prepare_coding(self) -> Any: ...

  def encode_image(self, image: np.ndarray, prepared) -> tuple[list[bytes], int]: ...

  def decode_image(self, streams, shape, prepared) -> tuple[np.ndarray, int]: ...


def pad_to_multiple(image: np.ndarray, multiple: int) -> np.ndarray:
  """Edge padding of an H×W×C image up to the next multiple of ``multiple`` (decoders crop it off again)."""
  height, width = image.shape[:2]
  return np.pad(image, ((0, -height % multiple), (0, -width % multiple), (0, 0)), mode="edge")


def build(config: ml_collections.ConfigDict, seed: int = 0) -> nnx.Module:
  """The model ``config.name`` names, built from the rest of ``config``."""
  name = config.get("name")
  if name not in ARCHITECTURES:
    raise UsageError(f"unknown model {name!r}; known: {', '.join(sorted(ARCHITECTURES))}")
  module = importlib.import_module(ARCHITECTURES[name])
  kwargs = {k: v for k, v in config.items() if k != "name"}
  try:
    return module.build(rngs=nnx.Rngs(seed), **kwargs)
  except TypeError as e:
    raise UsageError(f"model {name!r}: bad settings {kwargs}: {e}") from None
