"""The compzoo file container: every compressed file says what wrote it and proves it is intact.

Layout (little-endian):
    magic "CZOO" | version u8 | flags u8 | name_len u16 | codec name (utf-8, parameters included)
    | weights id (16 bytes; zeros for classic codecs) | height u32 | width u32 | channels u8
    | content check u32 (flag bit 0: present) | stream count u8 | stream lengths u32...
    | streams... | crc32 of everything before it u32
The trailing CRC catches corruption and truncation before any decoder runs. The content check is the
CRC32 a codec computes of what it decoded (the image for lossless codecs, the symbols for learned ones),
verified after decoding: it catches an encoder and decoder that disagree, which would otherwise be a
silently wrong image.

Signals (flag bit 1) use the same layout: height holds the number of samples, width the sample rate in Hz and
channels the number of channels; their ``Container.shape`` is (samples, channels) and ``sample_rate`` is set.
Files of this layout without the bit are images, so image files are unchanged; a build that predates signals
refuses a signal file by its unknown flag.
"""

from __future__ import annotations

import dataclasses
import struct
import zlib

from compzoo.errors import BitstreamError, UsageError
from compzoo.signals import MAX_RATE

MAGIC = b"CZOO"
VERSION = 1
WEIGHTS_ID_BYTES = 16
NO_WEIGHTS = bytes(WEIGHTS_ID_BYTES)
_FLAG_CONTENT_CHECK = 1
_FLAG_SIGNAL = 2
_KNOWN_FLAGS = _FLAG_CONTENT_CHECK | _FLAG_SIGNAL
_FIXED = struct.Struct("<4sBBH")
_SHAPE = struct.Struct(f"<{WEIGHTS_ID_BYTES}sIIBIB")
_MAX_STREAMS = 255
MAX_SIDE = 1 << 20  # the largest side a header may state


@dataclasses.dataclass(frozen=True)
class Container:
  codec: str
  shape: tuple[int, ...]  # images (height, width, channels); signals (samples, channels)
  streams: tuple[bytes, ...]
  weights_id: bytes = NO_WEIGHTS
  content_check: int | None = None
  sample_rate: int | None = None  # set for signals only

  @property
  def is_signal(self) -> bool:
    return self.sample_rate is not None


def crc32(data) -> int:
  return zlib.crc32(memoryview(data).cast("B")) & 0xFFFFFFFF


def pack(container: Container) -> bytes:
  name = container.codec.encode("utf-8")
  if len(name) > 0xFFFF:
    raise UsageError("codec name too long")
  if len(container.streams) > _MAX_STREAMS:
    raise UsageError(f"at most {_MAX_STREAMS} streams")
  if len(container.weights_id) != WEIGHTS_ID_BYTES:
    raise UsageError(f"weights id must be {WEIGHTS_ID_BYTES} bytes")
  if container.is_signal:
    (height, channels), width = container.shape, container.sample_rate
  else:
    height, width, channels = container.shape
  flags = (0 if container.content_check is None else _FLAG_CONTENT_CHECK) | (_FLAG_SIGNAL if container.is_signal else 0)
  parts = [
      _FIXED.pack(MAGIC, VERSION, flags, len(name)), name,
      _SHAPE.pack(container.weights_id, height, width, channels, container.content_check or 0,
                  len(container.streams)),
      struct.pack(f"<{len(container.streams)}I", *map(len, container.streams)), *container.streams,
  ]
  body = b"".join(parts)
  return body + struct.pack("<I", crc32(body))


def unpack(data: bytes) -> Container:
  """Parses and verifies a file; any problem raises ``BitstreamError`` with the reason."""
  data = bytes(data)
  if len(data) < _FIXED.size or data[:4] != MAGIC:
    raise BitstreamError("not a compzoo file (bad magic bytes)")
  _, version, flags, name_len = _FIXED.unpack_from(data)
  if version != VERSION:
    raise BitstreamError(f"unsupported compzoo format version {version} (this build reads {VERSION})")
  offset = _FIXED.size + name_len
  header_end = offset + _SHAPE.size
  if len(data) < header_end + 4:
    raise BitstreamError("truncated compzoo file (header incomplete)")
  weights_id, height, width, channels, content_check, count = _SHAPE.unpack_from(data, offset)
  lengths_end = header_end + 4 * count
  if len(data) < lengths_end + 4:
    raise BitstreamError("truncated compzoo file (stream table incomplete)")
  lengths = struct.unpack_from(f"<{count}I", data, header_end)
  expected = lengths_end + sum(lengths) + 4
  if len(data) != expected:
    kind = "truncated" if len(data) < expected else "oversized"
    raise BitstreamError(f"{kind} compzoo file: {len(data)} bytes, header says {expected}")
  (stored_crc,) = struct.unpack_from("<I", data, len(data) - 4)
  if crc32(memoryview(data)[:-4]) != stored_crc:
    raise BitstreamError("corrupt compzoo file (checksum mismatch)")
  if flags & ~_KNOWN_FLAGS:
    raise BitstreamError(f"unknown flags {flags:#x} in compzoo file")
  try:
    name = data[_FIXED.size:offset].decode("utf-8")
  except UnicodeDecodeError:
    raise BitstreamError("compzoo file has an unreadable codec name") from None
  if flags & _FLAG_SIGNAL:
    if not (height > 0 and 0 < width <= MAX_RATE and channels > 0):
      raise BitstreamError(f"compzoo file has an invalid signal shape: {height} samples, {channels} channels, "
                           f"{width} Hz")
    shape, rate = (height, channels), width
  elif not (0 < height <= MAX_SIDE and 0 < width <= MAX_SIDE and channels in (1, 3)):
    raise BitstreamError(f"compzoo file has an invalid image shape {(height, width, channels)}")
  else:
    shape, rate = (height, width, channels), None
  streams, start = [], lengths_end
  for length in lengths:
    streams.append(data[start:start + length])
    start += length
  return Container(name, shape, tuple(streams), weights_id,
                   content_check if flags & _FLAG_CONTENT_CHECK else None, rate)


def expect_streams(streams, count: int, owner: str, fixed: dict[int, int] | None = None) -> None:
  """A file's streams, checked before decoding: ``count`` of them, stream i of exactly ``fixed[i]`` bytes
  (seeds). One wording for every model: 'X files hold N streams (...), this one has M'."""
  sizes = "".join(f", stream {i} of {n} bytes" for i, n in sorted((fixed or {}).items()))
  if len(streams) != count or any(len(streams[i]) != n for i, n in (fixed or {}).items() if i < len(streams)):
    raise BitstreamError(f"{owner} files hold {count} stream{'s' * (count != 1)}{sizes}; this one has "
                         f"{len(streams)} of {', '.join(str(len(s)) for s in streams) or 'no'} bytes")
