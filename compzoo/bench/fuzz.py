"""Fuzzing compressed files: random corruptions and truncations must only ever raise ``BitstreamError``.

Two depths: whole files (the container's checks must catch everything), and payloads re-wrapped with a
valid checksum (the codecs' own decoders must fail cleanly, and lossless codecs must never return a
wrong image). Each decode runs under an alarm, so a hang becomes a failure rather than a stuck run.
"""

from __future__ import annotations

import collections
import dataclasses
import signal

import numpy as np

from compzoo import bitstream
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
  original = codec.compress(image)
  container = bitstream.unpack(original)
  stats = FuzzStats()
  previous = signal.signal(signal.SIGALRM, _on_alarm)
  try:
    for case in range(cases):
      if rewrap:
        index = int(rng.integers(len(container.streams)))
        kind, stream = mutate(container.streams[index], rng) if container.streams[index] else ("none", b"")
        streams = container.streams[:index] + (stream,) + container.streams[index + 1:]
        damaged = bitstream.pack(dataclasses.replace(container, streams=streams))
      else:
        kind, damaged = mutate(original, rng)
      stats.cases += 1
      signal.alarm(seconds_per_case)
      try:
        decoded = codec.decompress(damaged)
      except BitstreamError:
        stats.rejected += 1
        stats.outcomes[f"{kind}:rejected"] += 1
        continue
      except TimeoutError:
        raise FuzzFailure(f"{codec.name}: case {case} ({kind}) took over {seconds_per_case}s") from None
      except Exception as e:
        raise FuzzFailure(f"{codec.name}: case {case} ({kind}) raised {type(e).__name__}: {e}") from e
      finally:
        signal.alarm(0)
      if not rewrap and damaged != original:
        raise FuzzFailure(f"{codec.name}: case {case} ({kind}) passed the container's checks")
      if codec.lossless and not np.array_equal(decoded, image):
        raise FuzzFailure(f"{codec.name}: case {case} ({kind}) decoded to a wrong image without error")
      stats.decoded += 1
      stats.outcomes[f"{kind}:decoded"] += 1
  finally:
    signal.signal(signal.SIGALRM, previous)
  return stats


def _on_alarm(signum, frame):
  raise TimeoutError
