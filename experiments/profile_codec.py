"""Where a codec's time goes: wall times of compressing and decompressing one image, then cProfile of one more
round of each (all after an untimed warm-up that compiles everything), printed as the functions with the most
time of their own.

    python -m experiments.profile_codec --codec=l3c --image=../shared/data/kodak/kodim05.png
    python -m experiments.profile_codec --codec=l3c --image=... --out=runs/profile-l3c   # + .prof files for snakeviz

Wall times of each round are printed too; with JAX's asynchronous dispatch, time spent computing on the
device shows up where the host waits for a result (``np.asarray`` of a jax.Array: ``_value``).
"""

from __future__ import annotations

import cProfile
import io
import pstats
import time
from pathlib import Path

from absl import app, flags

from experiments import launch

FLAGS = flags.FLAGS
flags.DEFINE_string("codec", "l3c", "A zoo codec name (compzoo models).")
flags.DEFINE_string("image", None, "The image to code.")
flags.DEFINE_integer("rounds", 3, "Timed rounds (without the profiler) after the warm-up; then one profiled round.")
flags.DEFINE_integer("top", 15, "Functions shown per profile.")
flags.DEFINE_string("out", None, "Folder for compress.prof and decompress.prof.")
flags.mark_flags_as_required(["image"])


def main(argv):
  del argv
  launch.run(_profile)


def _profile():
  import numpy as np
  from compzoo import zoo
  from compzoo.data.images import load_image
  codec = zoo.make_codec(FLAGS.codec)
  image = load_image(FLAGS.image)
  data = codec.compress(image)  # warm-up: compiles every function both directions need
  assert np.array_equal(codec.decompress(data), image) or not zoo.get(zoo.parse_codec_name(FLAGS.codec)[0]).lossless
  print(f"{FLAGS.codec} on {Path(FLAGS.image).name} {image.shape[1]}x{image.shape[0]}: {len(data)} bytes, "
        f"{8 * len(data) / image.size:.4f} bits per sub-pixel")
  for name, work in (("compress", lambda: codec.compress(image)), ("decompress", lambda: codec.decompress(data))):
    seconds = []
    for _ in range(FLAGS.rounds):
      started = time.perf_counter()
      work()
      seconds.append(time.perf_counter() - started)
    profile = cProfile.Profile()
    started = time.perf_counter()
    profile.runcall(work)
    profiled = time.perf_counter() - started
    print(f"\n== {name}: {min(seconds):.3f} s (best of {FLAGS.rounds}), {profiled:.3f} s under the profiler")
    text = io.StringIO()
    pstats.Stats(profile, stream=text).sort_stats("tottime").print_stats(FLAGS.top)
    print("\n".join(line for line in text.getvalue().splitlines()[5:] if line.strip()))
    if FLAGS.out:
      Path(FLAGS.out).mkdir(parents=True, exist_ok=True)
      profile.dump_stats(str(Path(FLAGS.out) / f"{name}.prof"))

if __name__ == "__main__":
  app.run(main)
