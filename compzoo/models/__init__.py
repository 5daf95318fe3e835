"""Methods, one module per architecture. ``build(model_config)`` makes the module a config names.

Each module defines ``build(config, rngs) -> nnx.Module``; the module's forward pass
``model(images, key=None, side=None)`` returns an ``RDOutput`` (see compzoo/rd.py). ``side`` is the rest
of the training record (label maps, labels, ...): a model reads what it uses and ignores the rest.
Models that code images also implement ``CodingModel``; lossy ones do it through the latent seam of
compzoo/models/latent.py.

Training-only networks (a GAN's discriminator or a WGAN's critic, both under ``discriminator``) live under
the attribute names in ``TRAINING_ONLY``: exports leave them out, so
they are neither shipped nor part of the weights id, and a model built for decoding
(``build(..., training=False)``) has none.
"""

from __future__ import annotations

import importlib
import pkgutil
import typing
from typing import Any, Mapping, Protocol

import jax.numpy as jnp
import numpy as np
from flax import nnx

from compzoo.errors import UsageError

# Config name -> module, discovered: every module of this package that declares ``ARCHITECTURE`` (and a
# ``build`` whose return annotation is its model class). Adding a method is adding its module.
ARCHITECTURES: dict[str, str] = {}
TRAINING_ONLY = ("discriminator",)


class CodingModel(Protocol):
  """What a learned ``Codec`` needs from a model.

  ``LOSSLESS``; ``DECODE_GUARANTEE`` (a key of compzoo.codecs.entries.GUARANTEES); ``MAX_PIXELS`` (None, or
  the largest image its decoder will take); ``coding_tables()`` (integer tables that depend only on the
  weights, or None: exports ship them and decoders use the shipped ones); ``prepare_coding(tables)``
  (built once per codec); image <-> streams; and ``min_stream_bits(shape, prepared)``, a true lower bound
  on the bits of any stream for an image of that shape, so a file claiming a huge image in a few bytes is
  refused before any work.
  """

  LOSSLESS: bool
  DECODE_GUARANTEE: str
  MAX_PIXELS: int | None

  def coding_tables(self) -> dict[str, Any] | None: ...

  def prepare_coding(self, tables) -> Any: ...

  def encode_image(self, image: np.ndarray, prepared) -> tuple[list[bytes], int | None]: ...

  def decode_image(self, streams, shape, prepared) -> tuple[np.ndarray, int | None]: ...

  def min_stream_bits(self, shape, prepared) -> float: ...


def pad_to_multiple(image: np.ndarray, multiple: int) -> np.ndarray:
  """Edge padding of an H×W×C image (or a batch, N×H×W×C) up to the next multiple of ``multiple`` (decoders
  crop it off again); NumPy arrays in NumPy, anything else (traced arrays) in JAX."""
  height, width = image.shape[-3:-1]
  pads = ((0, 0),) * (image.ndim - 3) + ((0, -height % multiple), (0, -width % multiple), (0, 0))
  return (np if isinstance(image, np.ndarray) else jnp).pad(image, pads, mode="edge")


def architectures() -> dict[str, str]:
  """ARCHITECTURES, filled on first use from the package's modules (entries set beforehand are kept)."""
  if not _DISCOVERED:
    for info in pkgutil.iter_modules(__path__, __name__ + "."):
      module = importlib.import_module(info.name)
      if isinstance(getattr(module, "ARCHITECTURE", None), str):
        ARCHITECTURES.setdefault(module.ARCHITECTURE, info.name)
    _DISCOVERED.append(True)
  return ARCHITECTURES


_DISCOVERED: list[bool] = []


def _module(config: Mapping):
  name = config.get("name")
  if name not in architectures():
    raise UsageError(f"unknown model {name!r}; known: {', '.join(sorted(ARCHITECTURES))}")
  return importlib.import_module(ARCHITECTURES[name])


def model_class(config: Mapping) -> type:
  """The class ``build(config)`` makes (its ``build``'s return annotation), without building it: what
  the zoo reads ``LOSSLESS`` and ``DECODE_GUARANTEE`` from."""
  return typing.get_type_hints(_module(config).build)["return"]


def build(config: Mapping, seed: int = 0, training: bool = True) -> nnx.Module:
  """The model ``config['name']`` names, built from the rest of ``config``; without ``training``, its
  training-only parts are dropped (what exports hold and decoders load)."""
  module = _module(config)
  name = config.get("name")
  kwargs = {k: v for k, v in config.items() if k != "name"}
  try:
    model = module.build(rngs=nnx.Rngs(seed), **kwargs)
  except TypeError as e:
    raise UsageError(f"model {name!r}: bad settings {kwargs}: {e}") from None
  if not training:
    strip_training_parts(model)
  return model


def strip_training_parts(model: nnx.Module) -> nnx.Module:
  for part in TRAINING_ONLY:
    if hasattr(model, part):
      delattr(model, part)
  return model


def decoding_state(model: nnx.Module) -> dict:
  """The model's variables as a pure dict, without its training-only parts: what an export holds."""
  state = nnx.to_pure_dict(nnx.state(model))
  return {key: value for key, value in state.items() if key not in TRAINING_ONLY}
