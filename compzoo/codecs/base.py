"""The ``Codec`` interface shared by classic and learned codecs.

A codec turns a uint8 HxWx3 image (plus side data where it needs some, such as a label map) into a
self-describing compzoo file and back. Subclasses implement ``encode_streams`` / ``decode_streams``
(payload only); this class owns the container, the shape and side-data checks, the decompression-bomb
limits, the content check and the wrapping of every decoder failure into ``BitstreamError``.
"""

from __future__ import annotations

import abc

import numpy as np

from compzoo import __version__, bitstream, signals
from compzoo.errors import BitstreamError, CompzooError, UsageError

# Files claiming more pixels are refused before any work, as Pillow refuses images over 179 MP and
# libjxl's tools over 2^28 pixels by default: a small file must never make a decoder allocate gigabytes.
# ``decompress(..., max_pixels=N)`` (``compzoo decompress --max-pixels N``) overrides it.
DEFAULT_MAX_PIXELS = 1 << 27  # 134 MP, e.g. 16384 x 8192
# The same bound for signals, counted in samples × channels (256 MB of int16): 24 hours of a 12-lead ECG at
# 250 Hz is 2^28; ``max_samples=`` (``--max-samples``) raises it.
DEFAULT_MAX_SAMPLES = 1 << 27


def check_image(image) -> np.ndarray:
  image = np.asarray(image)
  if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or 0 in image.shape:
    raise UsageError(f"codecs take uint8 HxWx3 images, got {image.dtype} of shape {image.shape}")
  return np.array(image, order="C", copy=True)  # encoders reject views such as broadcast arrays


def fit_image(image: np.ndarray, codec: "Codec") -> np.ndarray:
  """The image as ``codec`` takes it: its top-left crop of the codec's fixed size, if it has one (a
  smaller image is left for the codec to refuse)."""
  if codec.image_shape is None:
    return image
  return np.ascontiguousarray(image[:codec.image_shape[0], :codec.image_shape[1]])


def sample_side(codec: "Codec", image: np.ndarray) -> dict:
  """Side data for harnesses that run every codec on one image (fuzzing, cross-process decoding, the zoo
  walk): for a codec that codes a label map, bands of four CamVid classes (sky, road, tree, car) down
  the image; nothing for the rest."""
  if "label_map" not in codec.side_inputs:
    return {}
  bands = np.arange(image.shape[0]) * 4 // max(image.shape[0], 1)
  return {"label_map": np.repeat(np.array([0, 3, 5, 8], np.uint8)[bands][:, None], image.shape[1], axis=1)}


def check_label_map(label_map, image_shape) -> np.ndarray:
  """An H×W map of class ids for an H×W×3 image -> a C-ordered uint8 copy."""
  label_map = np.asarray(label_map)
  if label_map.ndim == 3 and label_map.shape[2] == 1:
    label_map = label_map[..., 0]
  if label_map.shape != tuple(image_shape[:2]) or not np.issubdtype(label_map.dtype, np.integer):
    raise UsageError(f"a label map must be integer H×W {tuple(image_shape[:2])} like the image, "
                     f"got {label_map.dtype} of shape {label_map.shape}")
  if label_map.size and (label_map.min() < 0 or label_map.max() > 255):
    raise UsageError("label map ids must lie in [0, 255]")
  return np.array(label_map, np.uint8, order="C")


_SIDE_CHECKS = {"label_map": check_label_map}  # every kind of side data a codec may take, and its check


class Codec(abc.ABC):
  """compress(image) -> bytes; decompress(bytes) -> image.

  ``name`` spells out every parameter and is fixed at construction (the zoo passes the canonical one);
  ``side_inputs`` names the side data ``compress`` needs (e.g. ``("label_map",)``), none for most codecs;
  ``max_pixels`` is the largest image the implementation will decode at all (learned codecs whose
  decoding memory or time grows with the image set it lower than the default limit); ``image_shape``
  is the one (height, width) a codec takes, for models of a fixed size (dplc: 32×32), else None;
  ``inner_format`` names the standard format its payload carries (compzoo/image_headers.py), whose header
  the decoder checks against the container before decoding (the fuzzer forges it), else None.
  """

  modality = "image"  # what compress takes: 'image' (uint8 H×W×3) or 'signal' (SignalCodec)
  weights_id: bytes = bitstream.NO_WEIGHTS
  inner_format: str | None = None
  side_inputs: tuple[str, ...] = ()
  max_pixels: int | None = None
  image_shape: tuple[int, int] | None = None

  def __init__(self, name: str, lossless: bool):
    self.name = name
    self.lossless = lossless

  @abc.abstractmethod
  def encode_streams(self, image: np.ndarray, **side) -> tuple[list[bytes], int | None]:
    """-> (payload streams, content check or None). Lossless codecs need not give a check."""

  @abc.abstractmethod
  def decode_streams(self, streams: tuple[bytes, ...], shape: tuple[int, int, int]) -> tuple[np.ndarray, int | None]:
    """-> (image, content check computed the same way as in ``encode_streams``, or None)."""

  def check_claim(self, streams: tuple[bytes, ...], shape: tuple[int, int, int]) -> None:
    """Raises ``BitstreamError`` when ``streams`` cannot hold an image of ``shape`` (too short for it), before
    any decoding work. Codecs whose payload states its own size need not check: a mismatch fails after."""

  def compress(self, image, **side) -> bytes:
    image = check_image(image)
    side = self._check_side(image.shape, side)
    self._check_size(image.shape, self.max_pixels, UsageError)
    streams, check = self.encode_streams(image, **side)
    if self.lossless:
      check = bitstream.crc32(image)
    return bitstream.pack(bitstream.Container(self.name, image.shape, tuple(streams), self.weights_id, check))

  def decompress(self, data: bytes, max_pixels: int | None = None) -> np.ndarray:
    container = bitstream.unpack(data)
    if container.codec != self.name:
      raise BitstreamError(f"file was written by codec {container.codec!r}, not {self.name!r}")
    if container.is_signal:
      raise BitstreamError(f"{self.name} codes images, and this file holds a signal")
    self.check_weights_id(container)
    self.check_container(container, max_pixels)
    image, check = self.run_decoder(self.decode_streams, container)
    image = np.asarray(image)
    if image.shape != container.shape or image.dtype != np.uint8:
      raise BitstreamError(f"{self.name}: payload decodes to {image.dtype} {image.shape}, header says {container.shape}")
    if self.lossless:
      check = bitstream.crc32(np.ascontiguousarray(image))
    if container.content_check is not None and check != container.content_check:
      raise BitstreamError(f"{self.name}: decoded content fails its check: encoder and decoder disagree")
    return image

  def check_weights_id(self, container: bitstream.Container) -> None:
    if container.weights_id == self.weights_id:
      return
    if container.weights_id in getattr(self, "retired_ids", ()):
      raise BitstreamError(f"this {self.name} file was written by compzoo 0.1, whose entropy coding of these "
                           f"weights this build ({__version__}) no longer has: decode it with compzoo 0.1 and "
                           "compress the image again")
    earlier = getattr(self, "superseded", {}).get(container.weights_id)
    if earlier:
      raise BitstreamError(f"this {self.name} file was written with {earlier}, which this build ({__version__}) "
                           "replaced: decode it with the compzoo that wrote it (or --weights pointing at those "
                           "weights) and compress the image again")
    raise BitstreamError(f"file needs weights {container.weights_id.hex()}, this codec has {self.weights_id.hex()}")

  def check_container(self, container: bitstream.Container, max_pixels: int | None = None) -> None:
    """What a file must pass before any decoding: the pixel limits (``max_pixels``, default
    DEFAULT_MAX_PIXELS, and the codec's own) and the claim its streams make."""
    self._check_size(container.shape, max_pixels or DEFAULT_MAX_PIXELS, BitstreamError, "--max-pixels")
    self._check_size(container.shape, self.max_pixels, BitstreamError)
    self.check_claim(container.streams, container.shape)

  def run_decoder(self, decode, container: bitstream.Container):
    """``decode(streams, shape)``, a decoder choking on bytes that passed the CRC raising a BitstreamError."""
    try:
      return decode(container.streams, container.shape)
    except CompzooError:
      raise
    except Exception as e:
      raise BitstreamError(f"{self.name}: cannot decode payload: {type(e).__name__}: {e}") from None

  def _check_side(self, image_shape, side: dict) -> dict:
    for key in side:
      if key not in self.side_inputs:
        takes = ", ".join(self.side_inputs) or "no side data"
        raise UsageError(f"codec {self.name!r} takes no {key} (it takes {takes})")
    missing = [key for key in self.side_inputs if side.get(key) is None]
    if missing:
      raise UsageError(f"codec {self.name!r} needs a {missing[0]} beside the image")
    return {key: _SIDE_CHECKS[key](value, image_shape) for key, value in side.items()}

  def _check_size(self, shape, limit, error, override: str = ""):
    pixels = shape[0] * shape[1]
    if limit is not None and pixels > limit:
      hint = f" (raise it with {override})" if override else ""
      verb = "file claims" if error is BitstreamError else "image has"
      raise error(f"{self.name}: {verb} {shape[1]}x{shape[0]} = {pixels} pixels, over the limit of {limit}{hint}")


class SignalCodec(Codec):
  """compress(Signal) -> bytes; decompress(bytes) -> Signal: the ``Codec`` contract for 1-D int16 signals.

  The container, weights id, stream and content checks and the wrapping of decoder failures are ``Codec``'s;
  shapes are (samples, channels), the rate rides in the container, and the bomb limit counts samples.
  ``decode_streams(streams, shape, sample_rate)`` returns int16 (samples, channels)."""

  modality = "signal"

  def compress(self, signal, sample_rate: int = signals.DEFAULT_RATE) -> bytes:
    signal = signals.as_signal(signal, sample_rate)
    self._check_samples(signal.shape, self.max_pixels, UsageError)
    streams, check = self.encode_streams(signal)
    if self.lossless:
      check = bitstream.crc32(signal.samples)
    return bitstream.pack(bitstream.Container(self.name, signal.shape, tuple(streams), self.weights_id, check,
                                              signal.sample_rate))

  def decompress(self, data: bytes, max_samples: int | None = None) -> signals.Signal:
    container = bitstream.unpack(data)
    if container.codec != self.name:
      raise BitstreamError(f"file was written by codec {container.codec!r}, not {self.name!r}")
    if not container.is_signal:
      raise BitstreamError(f"{self.name} codes signals, and this file holds an image")
    self.check_weights_id(container)
    self.check_container(container, max_samples)
    samples, check = self.run_decoder(
        lambda streams, shape: self.decode_streams(streams, shape, container.sample_rate), container)
    samples = np.asarray(samples)
    if samples.shape != container.shape or samples.dtype != np.int16:
      raise BitstreamError(f"{self.name}: payload decodes to {samples.dtype} {samples.shape}, header says "
                           f"{container.shape}")
    samples = np.ascontiguousarray(samples)
    if self.lossless:
      check = bitstream.crc32(samples)
    if container.content_check is not None and check != container.content_check:
      raise BitstreamError(f"{self.name}: decoded content fails its check: encoder and decoder disagree")
    return signals.Signal(samples, container.sample_rate)

  def check_container(self, container: bitstream.Container, max_samples: int | None = None) -> None:
    if container.shape[1] > signals.MAX_CHANNELS:
      raise BitstreamError(f"{self.name}: file claims {container.shape[1]} channels, at most {signals.MAX_CHANNELS}")
    self._check_samples(container.shape, max_samples or DEFAULT_MAX_SAMPLES, BitstreamError, "--max-samples")
    self._check_samples(container.shape, self.max_pixels, BitstreamError)
    self.check_claim(container.streams, container.shape)

  @abc.abstractmethod
  def encode_streams(self, signal: signals.Signal) -> tuple[list[bytes], int | None]:
    """-> (payload streams, content check or None)."""

  @abc.abstractmethod
  def decode_streams(self, streams, shape: tuple[int, int], sample_rate: int) -> tuple[np.ndarray, int | None]:
    """-> (int16 samples × channels, content check or None)."""

  def _check_samples(self, shape, limit, error, override: str = ""):
    values = shape[0] * shape[1]
    if limit is not None and values > limit:
      hint = f" (raise it with {override})" if override else ""
      verb = "file claims" if error is BitstreamError else "signal has"
      raise error(f"{self.name}: {verb} {shape[0]} samples × {shape[1]} channel(s) = {values}, over the limit of "
                  f"{limit}{hint}")
