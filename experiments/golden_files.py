"""Writes one file per shipped learned entry, and the pixels it decodes to, for tests/test_golden_files.py.

    python -m experiments.golden_files --golden_dir=tests/data/golden
    python -m experiments.golden_files --only=patch-ssc:step=20   # add a new entry's file, keep the others

Files written by one build must decode, unchanged, with every later build (or be refused with a one-line
reason): these are the files a refactor of the coding code is checked against. Run it before such a change,
never after it (it would only record the new behaviour). Run it with the test suite's XLA flags
(``XLA_FLAGS=--xla_backend_optimization_level=1``, tests/conftest.py): same-backend files depend on them. The image is a crop of odd size from skimage's
astronaut (the size a fixed-size model takes, for DPLC), and sc codes a banded label map beside it.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
from absl import app, flags
from PIL import Image

from compzoo import zoo
from compzoo.codecs.base import fit_image, sample_side
from compzoo.errors import UsageError

_OUT = flags.DEFINE_string("golden_dir", "tests/data/golden", "folder for the files, their pixels and manifest.json")
# Not "codecs": tests import this module beside colour_check, whose flag has that name (absl's flags are global).
_ONLY = flags.DEFINE_list("only", [], "write only these (new entries), keeping the manifest's other files")

# One point of every shipped learned family (the points of one family share its coding code), and of the fitted
# patch codecs' two kinds of book.
CODECS = (
    "bmshj2018-factorized:quality=1", "bmshj2018-factorized-spn:quality=2", "cpm-low", "cpm-mid", "cpm-high",
    "gc:channels=4", "gc-mse:channels=2",
    "sc:synthesize=sky+road", "dplc-mnist-wae:rate=8", "dplc-mnist-wgan:rate=0", "dplc-cifar10-wpp:rate=16",
    "torfason-ae:rate=mid", "torfason-ae-joint-camvid:rate=low", "jpeg-refine:quality=30", "l3c", "l3c-rgb",
    "l3c-rgb-shared", "pixelcnn", "patch-ssc:step=20", "patch-nonneg:step=28")
CROP = (37, 53)  # odd on both sides: every model pads


def image_for(codec) -> np.ndarray:
  import skimage.data

  image = skimage.data.astronaut()[40:40 + CROP[0], 180:180 + CROP[1]]
  if codec.image_shape is not None:
    image = skimage.data.astronaut()[100:100 + codec.image_shape[0], 200:200 + codec.image_shape[1]]
  return np.ascontiguousarray(fit_image(image, codec))


def backend_fingerprint() -> str:
  """The CPU model and its vector extensions: same-backend files decode only where these match."""
  try:
    info = Path("/proc/cpuinfo").read_text()
  except OSError:
    return "unknown"
  model = re.search(r"^model name\s*:\s*(.*)$", info, re.M)
  flags_line = re.search(r"^flags\s*:\s*(.*)$", info, re.M)
  vector = sorted(f for f in (flags_line.group(1).split() if flags_line else ()) if f.startswith(("avx", "sse", "fma")))
  return f"{model.group(1) if model else 'unknown'} [{' '.join(vector)}]"


def file_stem(name: str) -> str:
  return name.replace(":", "_").replace("=", "-").replace("+", "-")


def main(argv):
  del argv
  out = Path(_OUT.value)
  out.mkdir(parents=True, exist_ok=True)
  manifest, backend = {}, backend_fingerprint()
  if _ONLY.value:
    unknown = sorted(set(_ONLY.value) - set(CODECS))
    if unknown:
      raise UsageError(f"--only names {', '.join(unknown)}, which CODECS lacks")
    previous = json.loads((out / "manifest.json").read_text())
    manifest, backend = previous["files"], previous["backend"]  # the kept files' writer, not this machine
  for name in _ONLY.value or CODECS:
    codec = zoo.make_codec(name)
    if backend != backend_fingerprint() and getattr(codec, "guarantee", "") == "same-backend":
      raise UsageError(f"{name} decodes only on the machine kind that wrote it, and the kept files' manifest names "
                       "another: write every file again (no --only) on one machine")
    image = image_for(codec)
    data = codec.compress(image, **sample_side(codec, image))
    pixels = codec.decompress(data)
    stem = file_stem(name)
    (out / f"{stem}.czoo").write_bytes(data)
    Image.fromarray(pixels.squeeze()).save(out / f"{stem}.png")
    manifest[name] = {"file": f"{stem}.czoo", "pixels": f"{stem}.png", "bytes": len(data),
                      "pixels_sha256": hashlib.sha256(np.ascontiguousarray(pixels).tobytes()).hexdigest(),
                      "lossless": codec.lossless, "guarantee": getattr(codec, "guarantee", "")}
    print(f"{name}: {len(data)} bytes, {pixels.shape}")
  (out / "manifest.json").write_text(json.dumps({"backend": backend, "files": manifest}, indent=1,
                                                sort_keys=True) + "\n")


if __name__ == "__main__":
  app.run(main)
