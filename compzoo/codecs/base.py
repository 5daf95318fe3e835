"""The ``Codec`` interface shared by classic and learned codecs, and codec-name parsing.

A codec turns a uint8 HxWx3 image into a self-describing compzoo file and back. Subclasses implement
``encode_streams`` / ``decode_streams`` (payload only); this class owns the container, the shape checks,
the content check and the wrapping of every decoder failure into ``BitstreamError``.
"""

from __future__ import annotations

import abc

import numpy as np

from compzoo import bitstream
from compzoo.errors import BitstreamError, CompzooError, UsageError


def parse_codec_name(spec: str) -> tuple[str, dict[str, str]]:
  """'jpeg:quality=75' -> ('jpeg', {'quality': '75'})."""
  name, *settings = spec.strip().split(":")
  params = {}
  for setting in settings:
    key, sep, value = setting.partition("=")
    if not sep or not key or not value:
      raise UsageError(f"bad codec parameter {setting!r} in {spec!r}: expected key=value")
    if key in params:
      raise UsageError(f"parameter {key!r} given twice in {spec!r}")
    params[key] = value
  if not name:
    raise UsageError(f"empty codec name in {spec!r}")
  return name, params


def format_codec_name(name: str, params: dict) -> str:
  return ":".join([name] + [f"{k}={v}" for k, v in sorted(params.items())])


def check_image(image) -> np.ndarray:
  image = np.asarray(image)
  if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or 0 in image.shape:
    raise UsageError(f"codecs take uint8 HxWx3 images, got {image.dtype} of shape {image.shape}")
  return np.array(image, order="C", copy=True)  # encoders reject views such as broadcast arrays


class Codec(abc.ABC):
  """compress(image) -> bytes; decompress(bytes) -> image. ``name`` includes every parameter."""

  name: str
  lossless: bool
  weights_id: bytes = bitstream.NO_WEIGHTS

  @abc.abstractmethod
  def encode_streams(self, image: np.ndarray) -> tuple[list[bytes], int | None]:
    """-> (payload streams, content check or None). Lossless codecs need not give a check."""

  @abc.abstractmethod
  def decode_streams(self, streams: tuple[bytes, ...], shape: tuple[int, int, int]) -> tuple[np.ndarray, int | None]:
    """-> (image, content check computed the same way as in ``encode_streams``, or None)."""

  def compress(self, image) -> bytes:
    image = check_image(image)
    streams, check = self.encode_streams(image)
    if self.lossless:
      check = bitstream.crc32(image)
    return bitstream.pack(bitstream.Container(self.name, image.shape, tuple(streams), self.weights_id, check))

  def decompress(self, data: bytes) -> np.ndarray:
    container = bitstream.unpack(data)
    if container.codec != self.name:
      raise BitstreamError(f"file was written by codec {container.codec!r}, not {self.name!r}")
    if container.weights_id != self.weights_id:
      raise BitstreamError(f"file needs weights {container.weights_id.hex()}, this codec has {self.weights_id.hex()}")
    try:
      image, check = self.decode_streams(container.streams, container.shape)
    except CompzooError:
      raise
    except Exception as e:  # a third-party decoder choking on bytes that passed the CRC
      raise BitstreamError(f"{self.name}: cannot decode payload: {type(e).__name__}: {e}") from None
    image = np.asarray(image)
    if image.shape != container.shape or image.dtype != np.uint8:
      raise BitstreamError(f"{self.name}: payload decodes to {image.dtype} {image.shape}, header says {container.shape}")
    if self.lossless:
      check = bitstream.crc32(np.ascontiguousarray(image))
    if container.content_check is not None and check != container.content_check:
      raise BitstreamError(f"{self.name}: decoded content fails its check: encoder and decoder disagree")
    return image
