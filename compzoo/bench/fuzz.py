"""Fuzzing compressed files: random corruptions and truncations must only ever raise ``BitstreamError``.

Two depths: whole files (the container's checks must catch everything), and payloads re-wrapped with a
valid checksum (the codecs' own decoders must fail cleanly, and lossless codecs must never return a
wrong image). Each decode runs under an alarm, so a hang becomes a failure rather than a stuck run.
``crafted_headers`` builds decompression bombs: valid files whose header claims a huge image.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import signal
import time

import numpy as np

from compzoo import bitstream
from compzoo.codecs.base import DEFAULT_MAX_PIXELS, fit_image, sample_side
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
    decoded, error = _decode(codec, damaged, seconds_per_case, f"case {case} ({kind})")
    if error is not None:
      stats.rejected += 1
      stats.outcomes[f"{kind}:rejected"] += 1
      continue
    if not rewrap and damaged != original:
      raise FuzzFailure(f"{codec.name}: case {case} ({kind}) passed the container's checks")
    if codec.lossless and not np.array_equal(decoded, image):
      raise FuzzFailure(f"{codec.name}: case {case} ({kind}) decoded to a wrong image without error")
    stats.decoded += 1
    stats.outcomes[f"{kind}:decoded"] += 1
  return stats


def _decode(codec, data: bytes, seconds: float, label: str, max_pixels: int | None = None):
  """``codec.decompress`` under an alarm: -> (image, None), or (None, message) for a ``BitstreamError``;
  a hang or any other exception raises ``FuzzFailure``."""
  previous = signal.signal(signal.SIGALRM, _on_alarm)
  signal.setitimer(signal.ITIMER_REAL, seconds)
  try:
    return codec.decompress(data, max_pixels=max_pixels), None
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


def check_crafted_headers(codec, image: np.ndarray, seconds: float = 2.0):
  """Decodes every ``crafted_headers`` file; -> [(case, seconds taken, error message)]. Raises
  ``FuzzFailure`` if one decodes, raises anything but a one-line ``BitstreamError`` or takes longer."""
  results = []
  real_streams = codec.name.split(":")[0] not in LOOSE_STREAM_BOUND
  for case, data, limit in crafted_headers(codec, image, real_streams):
    start = time.perf_counter()
    _, message = _decode(codec, data, seconds, case, max_pixels=limit)
    if message is None:
      raise FuzzFailure(f"{codec.name}: {case}: decoded an image")
    if "\n" in message:
      raise FuzzFailure(f"{codec.name}: {case}: a multi-line error: {message!r}")
    results.append((case, time.perf_counter() - start, message))
  return results
