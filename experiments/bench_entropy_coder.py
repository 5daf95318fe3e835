"""Throughput of the shared categorical entropy coder, in symbols per second.

    python -m experiments.bench_entropy_coder --symbols=1000000 --levels=2,16,256

Times the whole host path a model's probabilities take: integer tables (``quantize_pmf``) plus
constriction's range coder, for encoding and for decoding, and checks that decoding is exact.
"""

import json
import sys
import time

import numpy as np
from absl import app, flags

from compzoo.entropy.coder import Decoder, Encoder, quantize_pmf

_SYMBOLS = flags.DEFINE_integer("symbols", 1_000_000, "symbols per measurement")
_LEVELS = flags.DEFINE_list("levels", ["2", "16", "256"], "alphabet sizes to measure")
_CHUNK = flags.DEFINE_integer("chunk", 16384, "rows per call, as the models' coding loop uses")
_REPEATS = flags.DEFINE_integer("repeats", 3, "best of this many runs")


def measure(levels: int, count: int, chunk: int, repeats: int) -> dict:
  rng = np.random.default_rng(0)
  logits = rng.normal(size=(min(count, chunk), levels)).astype(np.float32) * 3
  pmf = np.exp(logits - logits.max(axis=1, keepdims=True))
  pmf /= pmf.sum(axis=1, keepdims=True)
  chunks = [(start, min(start + chunk, count)) for start in range(0, count, chunk)]
  cumulative = np.cumsum(pmf, axis=1)
  symbols = np.concatenate([(rng.random((b - a, 1)) > cumulative[: b - a]).sum(axis=1) for a, b in chunks])
  symbols = np.minimum(symbols, levels - 1)
  best = {"encode_s": np.inf, "decode_s": np.inf, "tables_s": np.inf}
  for _ in range(repeats):
    start = time.perf_counter()
    for a, b in chunks:
      quantize_pmf(pmf[: b - a])
    best["tables_s"] = min(best["tables_s"], time.perf_counter() - start)
    start = time.perf_counter()
    encoder = Encoder()
    for a, b in chunks:
      encoder.put(symbols[a:b], pmf[: b - a])
    data = encoder.finish()
    best["encode_s"] = min(best["encode_s"], time.perf_counter() - start)
    start = time.perf_counter()
    decoder = Decoder(data)
    decoded = np.concatenate([decoder.get(pmf[: b - a]) for a, b in chunks])
    best["decode_s"] = min(best["decode_s"], time.perf_counter() - start)
    assert np.array_equal(decoded, symbols), "decode is not exact"
  ideal_bits = -np.log2(np.concatenate([pmf[np.arange(b - a), symbols[a:b]] for a, b in chunks])).sum()
  return {"levels": levels, "symbols": count, "encode_symbols_per_s": count / best["encode_s"],
          "decode_symbols_per_s": count / best["decode_s"], "tables_symbols_per_s": count / best["tables_s"],
          "bytes": len(data), "overhead_vs_ideal": float(8 * len(data) / ideal_bits - 1)}


def main(argv):
  del argv
  print("| L | symbols | encode sym/s | decode sym/s | tables alone sym/s | size over ideal |")
  print("|---|---|---|---|---|---|")
  for levels in map(int, _LEVELS.value):
    r = measure(levels, _SYMBOLS.value, _CHUNK.value, _REPEATS.value)
    print(f"| {levels} | {r['symbols']} | {r['encode_symbols_per_s']:.3g} | {r['decode_symbols_per_s']:.3g} | "
          f"{r['tables_symbols_per_s']:.3g} | {100 * r['overhead_vs_ideal']:+.3f}% |")
    print(json.dumps(r), flush=True, file=sys.stderr)


if __name__ == "__main__":
  app.run(main)
