"""The latent seam every lossy learned model codes through, written once.

    analyze(images) -> y        quantize(y) -> Quantized(values, symbols)        synthesize(values) -> images
    encode_symbols(symbols, prepared) -> streams     decode_symbols(streams, shape, prepared) -> symbols
    dequantize(symbols) -> values

A model supplies these (``symbols`` is a dict of integer arrays: a latent, importance counts, ...); this
mixin turns them into the ``CodingModel`` methods a codec calls, the model's own reconstruction, and the
dequantized latents of an image or a file (``LearnedCodec.latents``), which a task head on compressed
representations reads. So coding, evaluation and heads on latents go through one path.
The content check of a file is the CRC32 of its symbols: an encoder and decoder that disagree fail loudly.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from compzoo import bitstream
from compzoo.models import pad_to_multiple


class Quantized(NamedTuple):
  values: Any  # what synthesis reads (the dequantized latents)
  symbols: dict  # integer arrays the entropy models code


def file_key(seed) -> jax.Array:
  """The random key of a seed that a file carries (noise a decoder draws): threefry whatever JAX's default
  generator is, so what a file decodes to never depends on a process setting."""
  return jax.random.key(seed, impl="threefry2x32")


SEED_BYTES = 4  # a file's noise seed (GC's, SC's, dplc's) is a 32-bit big-endian stream of its own


def seed_stream(symbols: dict) -> bytes:
  """The stream of the ``seed`` symbol (one uint32) of one image's symbols."""
  return int(np.asarray(symbols["seed"]).ravel()[0]).to_bytes(SEED_BYTES, "big")


def seed_of_stream(stream: bytes) -> np.ndarray:
  """The ``seed`` symbol (shape (1,), uint32) a seed stream holds."""
  return np.asarray([int.from_bytes(stream, "big")], np.uint32)


def symbols_check(symbols: dict) -> int:
  """CRC32 of every symbol array (as int32, keys in sorted order)."""
  return bitstream.crc32(np.concatenate([np.asarray(symbols[k], np.int32).ravel() for k in sorted(symbols)]))


class LatentCoding:
  """Mixin for lossy ``nnx.Module`` models: ``CodingModel`` from the latent seam. ``STRIDE`` is the
  analysis transform's downsampling (images are edge-padded to a multiple of it, decoders crop)."""

  LOSSLESS = False
  STRIDE = 1

  def latent_shape(self, shape) -> tuple[int, int]:
    return -(-shape[0] // self.STRIDE), -(-shape[1] // self.STRIDE)

  def symbols_of_images(self, images: np.ndarray) -> dict:
    """The symbols of N same-shaped H×W×3 uint8 images (edge-padded to a multiple of ``STRIDE``), batched.
    A model whose file holds a symbol that is no function of its latent (dplc's seed) adds it here."""
    return _numpy(_symbols_of(self, pad_to_multiple(images, self.STRIDE)))

  def symbols_of_image(self, image: np.ndarray) -> dict:
    return {k: v[0] for k, v in self.symbols_of_images(image[None]).items()}

  def pixels_of_symbols(self, symbols: dict, shape) -> np.ndarray:
    """The decoded H×W×3 uint8 image of one image's symbols (``shape``: the image's, before padding)."""
    batched = {k: jnp.asarray(v)[None] for k, v in symbols.items()}
    return np.asarray(_pixels_of(self, batched))[0, :shape[0], :shape[1]]

  def content_check(self, symbols: dict) -> int:
    """The check a file stores of its symbols; an encoder and decoder that disagree fail it."""
    return symbols_check(symbols)

  def encode_image(self, image: np.ndarray, prepared):
    symbols = self.symbols_of_image(image)
    return self.encode_symbols(symbols, prepared), self.content_check(symbols)

  def decode_image(self, streams, shape, prepared):
    symbols = self.decode_symbols(streams, shape, prepared)
    return self.pixels_of_symbols(symbols, shape), self.content_check(symbols)

  def reconstruct(self, image: np.ndarray) -> np.ndarray:
    """The model's own reconstruction of an H×W×3 uint8 image: what decoding its bitstream must give."""
    return self.pixels_of_symbols(self.symbols_of_image(image), image.shape)

  def reconstruct_batch(self, images: np.ndarray) -> np.ndarray:
    """``reconstruct`` of N same-shaped images in one call (evaluation at scale: a batch may round a rare
    pixel one level differently from one image at a time, which is what files decode with)."""
    pixels = _pixels_of(self, {k: jnp.asarray(v) for k, v in self.symbols_of_images(images).items()})
    return np.asarray(pixels)[:, :images.shape[1], :images.shape[2]]

  def latents_of_image(self, image: np.ndarray) -> np.ndarray:
    return np.asarray(_values_of(self, pad_to_multiple(image, self.STRIDE)[None]))[0]

  def latents_of_streams(self, streams, shape, prepared) -> tuple[np.ndarray, int]:
    """(the dequantized latents, the symbols' check): entropy decoding only, no synthesis."""
    symbols = self.decode_symbols(streams, shape, prepared)
    values = np.asarray(_dequantize(self, {k: jnp.asarray(v)[None] for k, v in symbols.items()}))[0]
    return values, self.content_check(symbols)


def _numpy(batched: dict) -> dict:
  return {k: np.asarray(v) for k, v in batched.items()}


@nnx.jit
def _symbols_of(model, images):
  return model.quantize(model.analyze(images)).symbols


@nnx.jit
def _values_of(model, images):
  return model.quantize(model.analyze(images)).values


@nnx.jit
def _dequantize(model, symbols):
  """The latents a file holds: ``latent_values(symbols)`` where a model's dequantized values carry more than
  its code (GC's noise, SC's label features), else ``dequantize``; what ``quantize(y).values`` gives for an image."""
  return getattr(model, "latent_values", model.dequantize)(symbols)


@nnx.jit
def _pixels_of(model, symbols):
  return jnp.clip(jnp.round(model.synthesize(model.dequantize(symbols))), 0, 255).astype(jnp.uint8)
