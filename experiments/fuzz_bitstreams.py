"""Long fuzz run: damaged files of every codec must raise only ``BitstreamError`` (never hang or crash).

    python -m experiments.fuzz_bitstreams --cases=10000 --rewrap_cases=1000

``--cases`` damages whole files (the container's checks must reject all real damage); ``--rewrap_cases``
damages payloads behind a valid checksum, so each codec's own decoder meets the damage. Then every codec
meets decompression bombs (valid files whose header claims a huge image): each must fail in one line
within 2 s; the table gives the slowest refusal. Codecs whose payload is a standard format (PNG, JPEG,
WebP, JPEG 2000, JPEG XL, AVIF) also meet inner-header lies (the format's own header forged to claim
30000x30000, one pixel more, or swapped sides, the container left as written): the table gives the
slowest refusal and the most memory one took (peak resident memory above the process's before the
decode, on Linux, whose peak is reset before each file).
"""

import sys
import time

import numpy as np
from absl import app, flags

from compzoo import zoo
from compzoo.bench.fuzz import check_crafted_headers, fuzz_codec, guarded_decode, inner_header_lies
from compzoo.data import embedded_images

_CODECS = flags.DEFINE_list("codecs", None, "codec names (default: every zoo entry)")
_CASES = flags.DEFINE_integer("cases", 10_000, "damaged whole files per codec")
_REWRAP = flags.DEFINE_integer("rewrap_cases", 1_000, "damaged payloads behind valid checksums per codec")
_SEED = flags.DEFINE_integer("seed", 2026, "random seed")


def main(argv):
  del argv
  image_input = np.ascontiguousarray(embedded_images()["coffee"][100:164, 200:296])
  # Signal codecs get an ECG-like random walk (samples × 1) instead.
  walk = np.cumsum(np.random.default_rng(_SEED.value).integers(-40, 41, (2000, 1)), axis=0).astype(np.int16)
  names = _CODECS.value or [name for name, entry in zoo.entries().items() if not entry.needs_weights]
  print("| codec | whole files | rejected | payloads behind valid CRC | rejected | decoded | bombs refused | "
        "slowest refusal s | inner-header lies refused | slowest s | most memory MB | seconds |")
  print("|---|---|---|---|---|---|---|---|---|---|---|---|")
  total = 0
  for name in names:
    codec = zoo.make_codec(name)
    image = walk if codec.modality == "signal" else image_input
    start = time.perf_counter()
    whole = fuzz_codec(codec, image, _CASES.value, seed=_SEED.value)
    inner = fuzz_codec(codec, image, _REWRAP.value, seed=_SEED.value + 1, rewrap=True)
    bombs = check_crafted_headers(codec, image)
    lies = [_refusal(codec, case, data) for case, data in inner_header_lies(codec, image)]
    total += whole.cases + inner.cases + len(bombs) + len(lies)
    lie_columns = (f"{len(lies)} | {max(s for s, _ in lies):.4f} | {max(m for _, m in lies):.1f}" if lies
                   else "- | - | -")
    print(f"| {codec.name} | {whole.cases} | {whole.rejected} | {inner.cases} | {inner.rejected} | "
          f"{inner.decoded} | {len(bombs)} | {max(s for _, s, _ in bombs):.3f} | {lie_columns} | "
          f"{time.perf_counter() - start:.1f} |", flush=True)
  print(f"\n{total} damaged files, no exception other than BitstreamError, no hang, no wrong lossless image.")


def _refusal(codec, case: str, data: bytes) -> tuple[float, float]:
  """(seconds, MB of peak resident memory above the resident memory before) of refusing one lie."""
  before = _reset_peak()
  start = time.perf_counter()
  _, message = guarded_decode(codec, data, 10.0, case)
  seconds = time.perf_counter() - start
  if message is None or "stream inside declares" not in message:
    sys.exit(f"{codec.name}: {case}: not refused by the header check: {message!r}")
  return seconds, (_status_kb("VmHWM") - before) / 1024 if before is not None else float("nan")


def _reset_peak() -> int | None:
  """Resets this process's peak resident memory to its current one (Linux 4.0+); -> current kB or None."""
  try:
    with open("/proc/self/clear_refs", "w") as f:
      f.write("5")
    return _status_kb("VmRSS")
  except OSError:
    return None


def _status_kb(field: str) -> int:
  with open("/proc/self/status") as f:
    return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


if __name__ == "__main__":
  app.run(main)
