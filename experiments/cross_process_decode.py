"""Files written in one process decode in another started with other XLA CPU settings, as a file written on
one machine is decoded on another: the exact image (what the writer's own decoder gives), or for entries
whose guarantee is 'same backend only' a ``BitstreamError`` — never a wrong image.

    python -m experiments.cross_process_decode
    python -m experiments.cross_process_decode --xla_flags="--xla_cpu_max_isa=AVX" --codecs=l3c,cpm-mid

Prints one JSON line per codec: the outcome ('exact', 'refused', 'one level' or 'WRONG': see ``check``),
the decode time in the other process (its second decode: the first compiles), and the guarantee the codec
states. tests/test_cross_process.py
runs the same check.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

# Another device count, one Eigen thread, no multi-threaded codegen: other partitions of every
# convolution and reduction than the writing process uses.
OTHER_XLA_FLAGS = ("--xla_force_host_platform_device_count=3 --xla_cpu_multi_thread_eigen=false "
                   "--xla_cpu_parallel_codegen_split_count=1")

_DECODER = """
import hashlib, json, sys, time
import numpy as np
from compzoo import zoo, bitstream
from compzoo.errors import BitstreamError
repeats = int(sys.argv[1])
for path in sys.argv[2:]:
  data = open(path, "rb").read()
  codec = zoo.make_codec(bitstream.unpack(data).codec)
  for attempt in range(repeats):  # the first decode compiles; the last is timed
    start = time.perf_counter()
    try:
      image = codec.decompress(data)
      error = ""
    except BitstreamError as e:
      error = str(e)
  seconds = time.perf_counter() - start
  if not error:
    np.save(path + ".npy", image)
  print(json.dumps({"file": path, "error": error, "decode_s": seconds}), flush=True)
"""


def decode_elsewhere(files, xla_flags: str = OTHER_XLA_FLAGS, repeats: int = 2, timeout: int = 900,
                     platforms: str | None = "cpu") -> dict[str, dict]:
  """Decodes ``files`` in a new process with ``xla_flags`` on JAX's ``platforms`` (None: its default
  backend, a GPU where there is one), each image to FILE.npy; -> {file: {'error', 'decode_s'}}."""
  env = dict(os.environ, XLA_FLAGS=xla_flags)
  env.pop("JAX_PLATFORMS", None)
  if platforms:
    env["JAX_PLATFORMS"] = platforms
  result = subprocess.run([sys.executable, "-c", _DECODER, str(repeats), *map(str, files)], env=env, capture_output=True,
                          text=True, timeout=timeout)
  if result.returncode:
    raise RuntimeError(f"decoding process failed: {result.stderr[-3000:]}")
  rows = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
  return {row["file"]: row for row in rows}


def check(codec_names, image, workdir, xla_flags: str = OTHER_XLA_FLAGS, repeats: int = 2,
          platforms: str | None = "cpu") -> dict[str, dict]:
  """-> {codec: {'outcome', 'differing_pixels', 'decode_s', 'guarantee', 'detail'}} for files written here
  and decoded elsewhere (``platforms``: see ``decode_elsewhere``). Outcomes: 'exact'; 'refused' (a
  BitstreamError); 'one level' (a lossy codec's symbols decoded exactly, as its content check proves, and
  its float synthesis rounded a few pixels one level the other way); 'WRONG' (anything else, a file its
  own writer cannot decode included)."""
  import numpy as np
  from compzoo import zoo
  from compzoo.codecs.base import fit_image, sample_side
  from compzoo.errors import BitstreamError
  expected, files = {}, {}
  Path(workdir).mkdir(parents=True, exist_ok=True)
  for name in codec_names:
    codec = zoo.make_codec(name)
    fitted = fit_image(image, codec)
    data = codec.compress(fitted, **sample_side(codec, fitted))
    files[name] = Path(workdir) / f"{name}.czoo"
    files[name].write_bytes(data)
    try:
      expected[name] = (codec.decompress(data), codec)
    except BitstreamError as e:  # the writer's own backend refuses its file: nothing elsewhere can be right
      expected[name] = (e, codec)
  decoded = decode_elsewhere(files.values(), xla_flags, repeats, platforms=platforms)
  report = {}
  for name, path in files.items():
    row, (reference, codec) = decoded[str(path)], expected[name]
    differing = None
    if isinstance(reference, BitstreamError):
      outcome, row = "WRONG", {**row, "error": f"its writer's own decode failed: {reference}"}
    elif row["error"]:
      outcome = "refused"
    else:
      other = np.load(f"{path}.npy")
      difference = np.abs(other.astype(int) - reference.astype(int))
      differing = int((difference.max(axis=-1) > 0).sum())
      if not differing:
        outcome = "exact"
      elif not codec.lossless and difference.max() <= 1:
        outcome = "one level"
      else:
        outcome = "WRONG"
    report[name] = {"outcome": outcome, "differing_pixels": differing, "decode_s": round(row["decode_s"], 3),
                    "guarantee": codec.guarantee, "detail": row["error"]}
  return report


def learned_entries(one_per_group: bool = False) -> list[str]:
  """Every shipped learned image entry; with ``one_per_group``, the first of each zoo family or group (cpm's three
  points, DPLC's objectives: one network each, differing only in weights, so one entry checks the
  decoder's numerics for all)."""
  from compzoo import zoo
  names, seen = [], set()
  for name, entry in zoo.entries().items():
    kin = entry.family or entry.group
    if (entry.kind != "learned" or entry.needs_weights or entry.modality != "image"
        or (one_per_group and kin and kin in seen)):
      continue
    seen.add(kin)
    names.append(name)
  return names


def main(argv):
  del argv
  import numpy as np
  import skimage.data
  from absl import flags
  image = np.ascontiguousarray(skimage.data.astronaut()[96:160, 160:256])
  names = flags.FLAGS.codecs or learned_entries()
  with tempfile.TemporaryDirectory() as workdir:
    for name, row in check(names, image, workdir, flags.FLAGS.xla_flags).items():
      print(json.dumps({"codec": name, **row}))


if __name__ == "__main__":
  from absl import app, flags
  flags.DEFINE_list("codecs", None, "zoo codecs (default: every shipped learned entry)")
  flags.DEFINE_string("xla_flags", OTHER_XLA_FLAGS, "XLA_FLAGS of the decoding process")
  app.run(main)
