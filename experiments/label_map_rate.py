"""What a label map costs: the W/N/NE context coder (compzoo/entropy/label_map.py) fitted on CamVid's
train maps, then real files of the test maps, against optimised PNG of the same maps. SC files carry
their label map, so this is the floor of every SC rate on CamVid.

    python -m experiments.label_map_rate                      # 367 train maps, 400 steps, 233 test maps
    python -m experiments.label_map_rate --steps=100 --test=20

Prints one JSON line: bits per pixel of the coded maps and of PNG, the model's own estimate, and the
decode time per map; every test map is decoded and compared.
"""

import io
import json
import time
from pathlib import Path

import numpy as np
from absl import app, flags
from PIL import Image

from compzoo.data import CAMVID_CLASSES, load_label_map
from compzoo.entropy import Decoder, Encoder
from compzoo.entropy import label_map as lm
from experiments.configs import presets

_ROOT = flags.DEFINE_string("camvid", presets.CAMVID, "CamVid folder (train/labels, test/labels)")
_STEPS = flags.DEFINE_integer("steps", 400, "Adam steps on the train maps (batches of 16)")
_TEST = flags.DEFINE_integer("test", 0, "first N test maps (0: all)")
CLASSES = len(CAMVID_CLASSES)  # with void


def _maps(folder: Path, limit: int = 0) -> np.ndarray:
  paths = sorted(folder.glob("*.png"))[: limit or None]
  if not paths:
    raise app.UsageError(f"no label maps in {folder}")
  return np.stack([load_label_map(p) for p in paths]).astype(np.int32)


def main(argv):
  del argv
  root = Path(_ROOT.value)
  train, test = _maps(root / "train" / "labels"), _maps(root / "test" / "labels", _TEST.value)
  model = lm.LabelMapModel(CLASSES)
  rng = np.random.default_rng(0)
  lm.fit(model, (train[rng.choice(len(train), 16, replace=False)] for _ in range(_STEPS.value)))
  table = model.coding_table()
  coded_bits, png_bits, seconds = 0, 0, 0.0
  for labels in test:
    encoder = Encoder()
    model.coder.encode(encoder, labels, table)
    data = encoder.finish()
    start = time.perf_counter()
    decoded = model.coder.decode(Decoder(data), labels.shape, table)
    seconds += time.perf_counter() - start
    if not np.array_equal(decoded, labels):
      raise SystemExit("a test map did not decode exactly")
    buffer = io.BytesIO()
    Image.fromarray(labels.astype(np.uint8)).save(buffer, "PNG", optimize=True)
    coded_bits, png_bits = coded_bits + 8 * len(data), png_bits + 8 * len(buffer.getvalue())
  pixels = test[0].size * len(test)
  model_bits = sum(float(model.bits(test[i:i + 32]).sum()) for i in range(0, len(test), 32))
  print(json.dumps({"train_maps": len(train), "steps": _STEPS.value, "test_maps": len(test),
                    "bpp_coded": coded_bits / pixels, "bpp_model": model_bits / pixels,
                    "bpp_png": png_bits / pixels, "decode_s_per_map": seconds / len(test), "exact": True}))


if __name__ == "__main__":
  app.run(main)
