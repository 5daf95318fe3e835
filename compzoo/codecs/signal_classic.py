"""Classic lossless signal codecs, the baselines learned signal codecs are measured against.

``flac``: FLAC through libsndfile (the ``soundfile`` binding), one stream holding a FLAC file. Its STREAMINFO
(rate, channels, bits per sample, sample count: fixed fields right after the magic) must match the container
before libsndfile runs, the same rule the image codecs' inner headers follow.
``xz-delta`` / ``zlib-delta``: each channel's first differences (int16, wrapping, so exact), split into a
plane of high bytes and one of low bytes (the high bytes are nearly constant), then xz -6e (the same as -9e below 8 MB, without its 674 MB of encoder
memory; no xz check: the container has its own) or zlib -9. The
decoders inflate at most the bytes the container's shape needs, so a crafted stream cannot inflate further.
"""

from __future__ import annotations

import io
import lzma
import struct
import zlib

import numpy as np
import soundfile

from compzoo.codecs.base import SignalCodec
from compzoo.codecs.entries import Param, ZooEntry
from compzoo.errors import BitstreamError, UsageError

FLAC_MAX_RATE = 655350  # Hz: libFLAC's limit
_STREAMINFO = struct.Struct(">4sB3s10s8s16s")  # magic, block type, length, sizes, rate|channels|bps|count, md5


def streaminfo(payload: bytes, owner: str = "flac") -> tuple[int, int, int, int]:
  """A FLAC file's (sample rate, channels, bits per sample, samples) from its STREAMINFO block."""
  if len(payload) < _STREAMINFO.size:
    raise BitstreamError(f"{owner}: the FLAC stream is too short for its header ({len(payload)} bytes)")
  magic, block_type, length, _, packed, _ = _STREAMINFO.unpack_from(payload)
  if magic != b"fLaC" or block_type & 0x7F != 0 or int.from_bytes(length, "big") != 34:
    raise BitstreamError(f"{owner}: the payload is not a FLAC stream (no STREAMINFO block after the magic)")
  bits = int.from_bytes(packed, "big")
  return bits >> 44, ((bits >> 41) & 0x7) + 1, ((bits >> 36) & 0x1F) + 1, bits & ((1 << 36) - 1)


class FlacCodec(SignalCodec):
  inner_format = "flac"

  def __init__(self, name: str, level: int):
    super().__init__(name, lossless=True)
    self.level = level

  def encode_streams(self, signal):
    if signal.channels > 8:
      raise UsageError(f"{self.name}: FLAC holds at most 8 channels, this signal has {signal.channels}")
    if signal.sample_rate > FLAC_MAX_RATE:
      raise UsageError(f"{self.name}: FLAC holds rates up to {FLAC_MAX_RATE} Hz, this signal has {signal.sample_rate}")
    buffer = io.BytesIO()
    soundfile.write(buffer, signal.samples, signal.sample_rate, format="FLAC", subtype="PCM_16",
                    compression_level=self.level / 8)
    return [buffer.getvalue()], None

  def decode_streams(self, streams, shape, sample_rate):
    _expect_one(streams, self.name)
    stated = streaminfo(streams[0], self.name)
    wanted = (sample_rate, shape[1], 16, shape[0])
    if stated != wanted:
      raise BitstreamError(f"{self.name}: the FLAC stream inside declares {stated[3]} samples × {stated[1]} "
                           f"channel(s), {stated[2]} bits at {stated[0]} Hz; the container {shape[0]} × {shape[1]}, "
                           f"16 bits at {sample_rate} Hz")
    samples, _ = soundfile.read(io.BytesIO(streams[0]), dtype="int16", always_2d=True)
    return samples, None


class DeltaCodec(SignalCodec):
  """First differences, byte planes, a general-purpose compressor."""

  def __init__(self, name: str, compress, decompressor):
    super().__init__(name, lossless=True)
    self._compress, self._decompressor = compress, decompressor

  def encode_streams(self, signal):
    delta = np.ascontiguousarray(np.diff(signal.samples.T, axis=1, prepend=0), "<i2")  # wraps; cumsum undoes it
    planes = delta.view(np.uint8).reshape(-1, 2).T  # [low bytes, high bytes], channel after channel
    return [self._compress(planes[::-1].tobytes())], None

  def decode_streams(self, streams, shape, sample_rate):
    _expect_one(streams, self.name)
    size = 2 * shape[0] * shape[1]
    raw = self._decompressor(streams[0], size, self.name)
    if len(raw) != size:
      got = f"more than {size}" if len(raw) > size else str(len(raw))
      raise BitstreamError(f"{self.name}: payload inflates to {got} bytes, the container needs {size}")
    planes = np.frombuffer(raw, np.uint8).reshape(2, -1)[::-1]
    delta = np.ascontiguousarray(planes.T).view("<i2").reshape(shape[1], shape[0])
    return np.cumsum(delta, axis=1, dtype=np.int16).T, None


def _expect_one(streams, name):
  if len(streams) != 1:
    raise BitstreamError(f"{name} files hold 1 stream; this one has {len(streams)}")


def _deflate_xz(data: bytes) -> bytes:
  return lzma.compress(data, format=lzma.FORMAT_XZ, check=lzma.CHECK_NONE, preset=6 | lzma.PRESET_EXTREME)


def _inflate_xz(data: bytes, size: int, owner: str) -> bytes:
  """At most ``size + 1`` bytes of an xz stream (one more than needed shows a stream that is too long)."""
  inflater = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
  out = inflater.decompress(data, max_length=size + 1)
  if len(out) <= size and not inflater.eof:
    raise BitstreamError(f"{owner}: the xz stream ends early (truncated payload)")
  return out


def _inflate_zlib(data: bytes, size: int, owner: str) -> bytes:
  inflater = zlib.decompressobj()
  out = inflater.decompress(data, size + 1)
  if len(out) <= size and not inflater.eof:
    raise BitstreamError(f"{owner}: the zlib stream ends early (truncated payload)")
  return out


ENTRIES = [  # collected by compzoo/zoo.py
    ZooEntry("flac", "FLAC (libsndfile), 16-bit, for signals", True,
             lambda canonical, level: FlacCodec(canonical, level), {"level": Param(int, 8, 0, 8)},
             modality="signal"),
    ZooEntry("xz-delta", "first differences, byte planes, xz -6e, for signals", True,
             lambda canonical: DeltaCodec(canonical, _deflate_xz,
                                          _inflate_xz), modality="signal", declared_guarantee="integer"),
    ZooEntry("zlib-delta", "first differences, byte planes, zlib -9, for signals", True,
             lambda canonical: DeltaCodec(canonical, lambda b: zlib.compress(b, 9), _inflate_zlib),
             modality="signal", declared_guarantee="integer"),
]
