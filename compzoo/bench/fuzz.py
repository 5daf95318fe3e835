"""Fuzzing compressed files: random corruptions and truncations must only ever raise ``BitstreamError``.

Two depths: whole files (the container's checks must catch everything), and payloads re-wrapped with a
valid checksum (the codecs' own decoders must fail cleanly, and lossless codecs must never return a
wrong image). Each decode runs under an alarm, so a hang becomes a failure rather than a stuck run.
``crafted_headers`` builds decompression bombs: valid files whose header claims a huge image;
``inner_header_lies`` forges the size in the header of the standard format a payload carries (PNG, JPEG,
WebP, JPEG 2000, JPEG XL, AVIF) behind a container that stays as written: the decoder must refuse it from
the header alone, before the library decoder allocates what the header claims.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import signal
import struct
import time
import zlib

import imagecodecs
import numpy as np

from compzoo import bitstream, image_headers, signals
from compzoo.codecs.base import DEFAULT_MAX_PIXELS, DEFAULT_MAX_SAMPLES, fit_image, sample_side
from compzoo.errors import BitstreamError


class FuzzFailure(AssertionError):
  pass


@dataclasses.dataclass
class FuzzStats:
  cases: int = 0
  rejected: int = 0  # raised BitstreamError
  decoded: int = 0  # decoded to an image (only where allowed)
  outcomes: collections.Counter = dataclasses.field(default_factory=collections.Counter)


def mutate(data: bytes, rng: np.random.Generator) -> tuple[str, bytes]:
  """One random damage: bit flips, byte overwrites, truncation, insertion, deletion, or a zeroed run."""
  data = bytearray(data)
  kind = rng.choice(["flip", "bytes", "truncate", "insert", "delete", "zero"])
  if kind == "truncate":
    return kind, bytes(data[: rng.integers(0, len(data))])
  if kind == "flip":
    for _ in range(rng.integers(1, 9)):
      data[rng.integers(len(data))] ^= 1 << int(rng.integers(8))
  elif kind == "bytes":
    for _ in range(rng.integers(1, 9)):
      data[rng.integers(len(data))] = int(rng.integers(256))
  elif kind == "insert":
    at = int(rng.integers(len(data) + 1))
    data[at:at] = rng.integers(0, 256, int(rng.integers(1, 16)), dtype=np.uint8).tobytes()
  elif kind == "delete":
    at = int(rng.integers(len(data)))
    del data[at:at + int(rng.integers(1, 16))]
  else:
    at = int(rng.integers(len(data)))
    data[at:at + int(rng.integers(1, 64))] = bytes(min(len(data) - at, 64))
  return kind, bytes(data)


def fuzz_codec(codec, image: np.ndarray, cases: int, seed: int = 0, rewrap: bool = False,
               seconds_per_case: int = 10) -> FuzzStats:
  """Decodes ``cases`` damaged copies of ``codec.compress(image)``; raises ``FuzzFailure`` on misbehaviour.

  With ``rewrap`` the damage goes into the payload streams and the container is rebuilt with a valid
  checksum, so the codec's own decoder sees the damage.
  """
  rng = np.random.default_rng(seed)
  image = fit_image(image, codec)
  original = codec.compress(image, **sample_side(codec, image))
  container = bitstream.unpack(original)
  stats = FuzzStats()
  for case in range(cases):
    if rewrap:
      index = int(rng.integers(len(container.streams)))
      kind, stream = mutate(container.streams[index], rng) if container.streams[index] else ("none", b"")
      streams = container.streams[:index] + (stream,) + container.streams[index + 1:]
      damaged = bitstream.pack(dataclasses.replace(container, streams=streams))
    else:
      kind, damaged = mutate(original, rng)
    stats.cases += 1
    decoded, error = guarded_decode(codec, damaged, seconds_per_case, f"case {case} ({kind})")
    if error is not None:
      stats.rejected += 1
      stats.outcomes[f"{kind}:rejected"] += 1
      continue
    if not rewrap and damaged != original:
      raise FuzzFailure(f"{codec.name}: case {case} ({kind}) passed the container's checks")
    if codec.lossless and not _same(decoded, image):
      raise FuzzFailure(f"{codec.name}: case {case} ({kind}) decoded to a wrong image without error")
    stats.decoded += 1
    stats.outcomes[f"{kind}:decoded"] += 1
  return stats


def guarded_decode(codec, data: bytes, seconds: float, label: str, max_pixels: int | None = None):
  """``codec.decompress`` under an alarm: -> (image, None), or (None, message) for a ``BitstreamError``;
  a hang or any other exception raises ``FuzzFailure``."""
  previous = signal.signal(signal.SIGALRM, _on_alarm)
  signal.setitimer(signal.ITIMER_REAL, seconds)
  limit = {"max_samples" if _is_signal(codec) else "max_pixels": max_pixels}
  try:
    return codec.decompress(data, **limit), None
  except BitstreamError as e:
    return None, str(e)
  except TimeoutError:
    raise FuzzFailure(f"{codec.name}: {label}: still decoding after {seconds} s") from None
  except Exception as e:
    raise FuzzFailure(f"{codec.name}: {label}: raised {type(e).__name__}: {e}") from e
  finally:
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, previous)


def _on_alarm(signum, frame):
  raise TimeoutError


def _is_signal(codec) -> bool:
  return getattr(codec, "modality", "image") == "signal"


def _same(decoded, original) -> bool:
  """A decoded image equals its original array; a decoded ``Signal`` the signal its original samples make."""
  if isinstance(decoded, signals.Signal):
    return decoded == signals.as_signal(original, decoded.sample_rate)
  return np.array_equal(decoded, original)


# Codecs whose entropy model can code a near-constant image in almost no bits, so a small real stream may
# honestly hold a large image (PixelCNN's mixtures put nearly all mass on one value): their claims are
# bounded by their own pixel limit, not by the stream's length.
LOOSE_STREAM_BOUND = frozenset({"pixelcnn"})


def crafted_headers(codec, image: np.ndarray, real_streams: bool = True) -> list[tuple[str, bytes, int | None]]:
  """Valid files (checksums right) of ``codec`` whose header claims a huge image:
  -> [(case, file, max_pixels to decode it with)]. Every one must fail with a one-line ``BitstreamError``
  before any real work: sizes over the default pixel limit or the codec's own, a user's raised limit
  meeting the codec's own, and the largest size the codec accepts with its streams emptied (and, with
  ``real_streams``, with the small image's real streams, which no learned codec may take for a huge one)."""
  if _is_signal(codec):
    return _crafted_signal_headers(codec, image, real_streams)
  image = fit_image(image, codec)
  container = bitstream.unpack(codec.compress(image, **sample_side(codec, image)))
  side = bitstream.MAX_SIDE
  accepted = min(DEFAULT_MAX_PIXELS, codec.max_pixels or DEFAULT_MAX_PIXELS)
  square = math.isqrt(accepted)
  claims = [("container maximum", (side, side), container.streams, None),
            ("just over the default limit", (DEFAULT_MAX_PIXELS // 8192 + 1, 8192), container.streams, None),
            ("container maximum, limit raised", (side, side), container.streams, side * side),
            ("largest accepted size, empty streams", (square, square), tuple(b"" for _ in container.streams), None)]
  if codec.max_pixels:
    claims.append(("just over the codec's own limit", (codec.max_pixels // 4096 + 1, 4096), container.streams, None))
  if real_streams:
    claims.append(("largest accepted size, the small image's streams", (square, square), container.streams, None))
  return [(case, bitstream.pack(dataclasses.replace(container, shape=(h, w, 3), streams=streams)), limit)
          for case, (h, w), streams, limit in claims]


def _crafted_signal_headers(codec, samples: np.ndarray, real_streams: bool) -> list[tuple[str, bytes, int | None]]:
  """``crafted_headers`` for a signal codec: claims counted in samples × channels."""
  container = bitstream.unpack(codec.compress(samples))
  accepted = min(DEFAULT_MAX_SAMPLES, codec.max_pixels or DEFAULT_MAX_SAMPLES)
  most = (1 << 32) - 1
  claims = [("container maximum", (most, 1), container.streams, None),
            ("just over the default limit", (DEFAULT_MAX_SAMPLES + 1, 1), container.streams, None),
            ("container maximum, limit raised", (most, 1), container.streams, most),
            ("more channels than any signal has", (1000, 255), container.streams, None),
            ("largest accepted size, empty streams", (accepted, 1), tuple(b"" for _ in container.streams), None)]
  if codec.max_pixels:
    claims.append(("just over the codec's own limit", (codec.max_pixels + 1, 1), container.streams, None))
  if real_streams:
    claims.append(("largest accepted size, the small signal's streams", (accepted, 1), container.streams, None))
  return [(case, bitstream.pack(dataclasses.replace(container, shape=shape, streams=streams)), limit)
          for case, shape, streams, limit in claims]


def check_crafted_headers(codec, image: np.ndarray, seconds: float = 2.0):
  """Decodes every ``crafted_headers`` file; -> [(case, seconds taken, error message)]. Raises
  ``FuzzFailure`` if one decodes, raises anything but a one-line ``BitstreamError`` or takes longer."""
  results = []
  real_streams = codec.name.split(":")[0] not in LOOSE_STREAM_BOUND
  for case, data, limit in crafted_headers(codec, image, real_streams):
    start = time.perf_counter()
    _, message = guarded_decode(codec, data, seconds, case, max_pixels=limit)
    if message is None:
      raise FuzzFailure(f"{codec.name}: {case}: decoded an image")
    if "\n" in message:
      raise FuzzFailure(f"{codec.name}: {case}: a multi-line error: {message!r}")
    results.append((case, time.perf_counter() - start, message))
  return results


# A lie far beyond any limit (the 30000×30000 JPEG that libjpeg decoded in 9 s and 2.5 GB before the size
# was checked); WebP's 14-bit fields stop at 16384.
HUGE_SIDE = 30000


def inner_header_lies(codec, image: np.ndarray) -> list[tuple[str, bytes]]:
  """Valid files (checksums right) of a codec whose payload is a standard format (``codec.inner_format``),
  the container's shape as written and the inner header's size forged: a huge claim, one pixel more each
  way, and the sides swapped. [] for other codecs."""
  if codec.inner_format is None:
    return []
  if codec.inner_format == "flac":
    return _flac_header_lies(codec, image)
  image = fit_image(image, codec)
  container = bitstream.unpack(codec.compress(image, **sample_side(codec, image)))
  height, width = container.shape[:2]
  claims = [(f"inner header claims {HUGE_SIDE}x{HUGE_SIDE}", (HUGE_SIDE, HUGE_SIDE)),
            ("inner header claims one pixel more each way", (height + 1, width + 1)),
            ("inner header swaps the sides", (width, height))]
  files = []
  for case, (claim_h, claim_w) in claims:
    stream = forge_inner_size(codec.inner_format, container.streams[0], claim_h, claim_w)
    files.append((case, bitstream.pack(dataclasses.replace(container, streams=(stream,) + container.streams[1:]))))
  return files


def _flac_header_lies(codec, samples: np.ndarray) -> list[tuple[str, bytes]]:
  """FLAC payloads whose STREAMINFO claims another sample count, channel count or rate than the container."""
  container = bitstream.unpack(codec.compress(samples))
  count, channels = container.shape
  claims = [("inner header claims 2^36 - 1 samples", ((1 << 36) - 1, channels, container.sample_rate)),
            ("inner header claims one sample more", (count + 1, channels, container.sample_rate)),
            ("inner header claims another channel count", (count, channels % 8 + 1, container.sample_rate)),
            ("inner header claims another rate", (count, channels, container.sample_rate + 1))]
  files = []
  for case, claim in claims:
    stream = forge_flac_streaminfo(container.streams[0], *claim)
    files.append((case, bitstream.pack(dataclasses.replace(container, streams=(stream,) + container.streams[1:]))))
  return files


def forge_flac_streaminfo(stream: bytes, samples: int, channels: int, rate: int) -> bytes:
  """A FLAC file with its STREAMINFO's rate, channel count and total samples rewritten (bits per sample kept)."""
  packed = int.from_bytes(stream[18:26], "big")
  bits_per_sample = (packed >> 36) & 0x1F
  packed = (rate << 44) | ((channels - 1) << 41) | (bits_per_sample << 36) | samples
  return stream[:18] + packed.to_bytes(8, "big") + stream[26:]


def check_inner_header_lies(codec, image: np.ndarray, seconds: float = 2.0):
  """Decodes every ``inner_header_lies`` file; -> [(case, seconds taken, error message)]. Raises
  ``FuzzFailure`` unless each is refused in one line by the header check (its message names the inner
  stream's declared size), within ``seconds``."""
  results = []
  for case, data in inner_header_lies(codec, image):
    start = time.perf_counter()
    _, message = guarded_decode(codec, data, seconds, case)
    if message is None:
      raise FuzzFailure(f"{codec.name}: {case}: decoded an image")
    if "\n" in message or "stream inside declares" not in message:
      raise FuzzFailure(f"{codec.name}: {case}: not refused by the header check: {message!r}")
    results.append((case, time.perf_counter() - start, message))
  return results


def forge_inner_size(fmt: str, stream: bytes, height: int, width: int) -> bytes:
  """``stream`` (a ``fmt`` file as compzoo writes it) with its header's size fields rewritten to claim
  height×width. The rest is kept, checksums included where the format has them in the header (PNG's
  IHDR CRC); JPEG XL's header is bit-packed, so what follows it shifts."""
  return _FORGERS[fmt](bytearray(stream), height, width)


def _forge_png(data, height, width):
  struct.pack_into(">II", data, 16, width, height)
  struct.pack_into(">I", data, 29, zlib.crc32(bytes(data[12:29])))
  return bytes(data)


def _forge_jpeg(data, height, width):
  at = 2
  while True:  # compzoo's JPEGs: SOI, then length-prefixed segments up to the frame header
    while data[at] == 0xFF:
      at += 1
    marker, at = data[at], at + 1
    if marker in image_headers.SOF_MARKERS:
      struct.pack_into(">HH", data, at + 3, height, width)
      return bytes(data)
    at += struct.unpack_from(">H", data, at)[0]


def _forge_webp(data, height, width):
  chunk = bytes(data[12:16])
  if chunk == b"VP8 ":  # 14-bit sizes; the scale bits are cleared
    struct.pack_into("<HH", data, 26, min(width, 0x3FFF), min(height, 0x3FFF))
  elif chunk == b"VP8L":
    kept = struct.unpack_from("<I", data, 21)[0] & ~0x0FFFFFFF
    struct.pack_into("<I", data, 21, kept | (min(height, 0x4000) - 1) << 14 | (min(width, 0x4000) - 1))
  else:
    data[24:30] = (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
  return bytes(data)


def _forge_jpeg2000(data, height, width):
  """Both the JP2 header box and the codestream's SIZ, so the two agree on the lie."""
  boxes = {kind: (start, end) for kind, start, end in image_headers.boxes(data)}
  header = {kind: start for kind, start, _ in image_headers.boxes(data, *boxes[b"jp2h"])}
  struct.pack_into(">II", data, header[b"ihdr"], height, width)
  struct.pack_into(">II", data, boxes[b"jp2c"][0] + 8, width, height)  # Xsiz, Ysiz; the offsets are 0
  return bytes(data)


def _forge_jpegxl(data, height, width):
  """JPEG XL's SizeHeader is bit-packed and the image metadata after it ends in zero padding to a byte, where
  the frames start. The metadata's end is found by trial (the first cut after which the stream, its size
  rewritten in the long form, still decodes to the same pixels), so the frames are kept byte for byte."""
  data = bytes(data)
  bits = image_headers.JxlBits(memoryview(data)[2:])
  size = image_headers.jxl_image_size(bits)  # the SizeHeader's own values, before any orientation
  stream = [(data[2 + i // 8] >> (i % 8)) & 1 for i in range(8 * (len(data) - 2))]
  original = imagecodecs.jpegxl_decode(data)
  for cut in range(bits.at, len(stream) + 1):
    if any(stream[cut:-(-cut // 8) * 8]):
      continue
    rebuilt = _jxl_rewrite(data, stream, bits.at, cut, *size)
    try:
      if np.array_equal(imagecodecs.jpegxl_decode(rebuilt), original):
        return _jxl_rewrite(data, stream, bits.at, cut, height, width)
    except (ValueError, RuntimeError):  # imagecodecs.JpegxlError is a RuntimeError
      pass
  raise ValueError("no cut after the JPEG XL image metadata decodes: cannot forge this stream")


def _jxl_rewrite(data, stream, header_end, cut, height, width):
  """The signature, a long-form SizeHeader claiming height×width, the metadata bits up to ``cut``, zero
  padding to a byte, then the original bytes from the byte boundary after ``cut``."""
  header = [0]  # not the 'small' form (multiples of 8 only)
  for value, then in ((height, [0, 0, 0]), (width, [])):  # ratio 0 after the height: the width follows
    selector, (count, offset) = next((i, d) for i, d in enumerate(image_headers.JXL_DIMENSION)
                                     if value - d[1] < 1 << d[0])
    header += _lsb(selector, 2) + _lsb(value - offset, count) + then
  merged = header + stream[header_end:cut]
  merged += [0] * (-len(merged) % 8)
  packed = bytes(sum(bit << j for j, bit in enumerate(merged[i:i + 8])) for i in range(0, len(merged), 8))
  return data[:2] + packed + data[2 + -(-cut // 8):]


def _lsb(value: int, count: int) -> list[int]:
  return [(value >> i) & 1 for i in range(count)]


def _forge_avif(data, height, width):
  for kind, start, _ in _all_boxes(data, 0, len(data)):
    if kind == b"ispe":
      struct.pack_into(">II", data, start + 4, width, height)
  return bytes(data)


def _all_boxes(data, start, end):
  """Every box under data[start:end], depth first through AVIF's meta, iprp and ipco."""
  for kind, body, stop in image_headers.boxes(data, start, end):
    yield kind, body, stop
    if kind in (b"meta", b"iprp", b"ipco"):
      yield from _all_boxes(data, body + (4 if kind == b"meta" else 0), stop)


_FORGERS = {"png": _forge_png, "jpeg": _forge_jpeg, "webp": _forge_webp, "jpeg2000": _forge_jpeg2000,
            "jpegxl": _forge_jpegxl, "avif": _forge_avif}
