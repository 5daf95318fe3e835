"""Do decoded pictures keep their colours? Hue agreement and saturation, codec by codec, on fixed crops.

    python -m experiments.colour_check --codecs=cpm-low,cpm-mid,cpm-high,jpeg2000:psnr=24

For each codec and crop (scikit-image's colour wheel, and two photos: the astronaut, the coffee cup):
bpp, ``metrics.hue_agreement`` of the 8×8 block means (1: every block keeps its hue) and the decoded
picture's mean saturation (max - min channel) as a share of the original's. One JSON line each. The
shipped lossy models' test (tests/test_learned_codec.py) asserts on these very crops and quantities.
"""

import json

import numpy as np
from absl import app, flags

_CODECS = flags.DEFINE_list("codecs", ["cpm-low", "cpm-mid", "cpm-high", "bmshj2018-factorized:quality=1"],
                            "zoo names")


def crops() -> dict[str, tuple[np.ndarray, bool]]:
  """name -> (crop, is a photo). The synthetic wheel is saturated to the limit, which low rates cannot
  keep, so saturation is judged on the photos only."""
  import skimage.data
  return {"colorwheel": (skimage.data.colorwheel()[56:312, 56:312, :3], False),
          "astronaut": (skimage.data.astronaut()[:256, :256], True),
          "coffee": (skimage.data.coffee()[100:228, 200:328], True)}


def saturation(image: np.ndarray) -> float:
  image = image.astype(np.float64)
  return float(np.mean(image.max(axis=-1) - image.min(axis=-1)))


def check(codec) -> list[dict]:
  from compzoo import metrics
  rows = []
  for name, (crop, photo) in crops().items():
    crop = np.ascontiguousarray(crop)
    data = codec.compress(crop)
    decoded = codec.decompress(data)
    rows.append({"codec": codec.name, "crop": name, "photo": photo,
                 "bpp": round(8 * len(data) / (crop.shape[0] * crop.shape[1]), 4),
                 "hue_agreement": round(metrics.hue_agreement(crop, decoded), 4),
                 "saturation_ratio": round(saturation(decoded) / saturation(crop), 4)})
  return rows


def main(argv):
  del argv
  from compzoo import zoo
  for name in _CODECS.value:
    for row in check(zoo.make_codec(name)):
      print(json.dumps(row))


if __name__ == "__main__":
  app.run(main)
