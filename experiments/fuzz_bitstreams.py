"""Long fuzz run: damaged files of every codec must raise only ``BitstreamError`` (never hang or crash).

    python -m experiments.fuzz_bitstreams --cases=10000 --rewrap_cases=1000

``--cases`` damages whole files (the container's checks must reject all real damage); ``--rewrap_cases``
damages payloads behind a valid checksum, so each codec's own decoder meets the damage. Then every codec
meets decompression bombs (valid files whose header claims a huge image): each must fail in one line
within 2 s; the table gives the slowest refusal.
"""

import time

import numpy as np
from absl import app, flags

from compzoo import zoo
from compzoo.bench.fuzz import check_crafted_headers, fuzz_codec
from compzoo.data import embedded_images

_CODECS = flags.DEFINE_list("codecs", None, "codec names (default: every zoo entry)")
_CASES = flags.DEFINE_integer("cases", 10_000, "damaged whole files per codec")
_REWRAP = flags.DEFINE_integer("rewrap_cases", 1_000, "damaged payloads behind valid checksums per codec")
_SEED = flags.DEFINE_integer("seed", 2026, "random seed")


def main(argv):
  del argv
  image = np.ascontiguousarray(embedded_images()["coffee"][100:164, 200:296])
  names = _CODECS.value or [name for name, entry in zoo.entries().items() if not entry.needs_weights]
  print("| codec | whole files | rejected | payloads behind valid CRC | rejected | decoded | bombs refused | "
        "slowest refusal s | seconds |")
  print("|---|---|---|---|---|---|---|---|---|")
  total = 0
  for name in names:
    codec = zoo.make_codec(name)
    start = time.perf_counter()
    whole = fuzz_codec(codec, image, _CASES.value, seed=_SEED.value)
    inner = fuzz_codec(codec, image, _REWRAP.value, seed=_SEED.value + 1, rewrap=True)
    bombs = check_crafted_headers(codec, image)
    total += whole.cases + inner.cases + len(bombs)
    print(f"| {codec.name} | {whole.cases} | {whole.rejected} | {inner.cases} | {inner.rejected} | "
          f"{inner.decoded} | {len(bombs)} | {max(s for _, s, _ in bombs):.3f} | "
          f"{time.perf_counter() - start:.1f} |", flush=True)
  print(f"\n{total} damaged files, no exception other than BitstreamError, no hang, no wrong lossless image.")


if __name__ == "__main__":
  app.run(main)
