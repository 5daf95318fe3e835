"""How much a distortion charges for losing colour, against losing texture: why MS-SSIM-trained codecs
can decode to grey images whose scores still look plausible.

    python -m experiments.colour_blindness --images=../shared/data/train/bsds500/train --crop=96

On random crops of the images (training images: nothing here is tuned on a reported set), three damages
are applied to each crop: colours halfway to grey, a flat colour cast of (+15, -15, 0), and Gaussian noise
of standard deviation 8 (texture). For each, it prints the mean MSE and the mean distortion under the
given ``--distortion`` (1 - MS-SSIM with ``--scales`` scales, as rd.distortion computes it, optionally with
its MSE and colour terms), and the distortion charged per unit of MSE. A distortion that charges colour
much less per unit of MSE than texture lets a rate-constrained model drop colour first.
"""

import json

import jax
import numpy as np
from absl import app, flags

from compzoo import metrics, rd
from compzoo.data import image_set
from experiments.configs import presets

_IMAGES = flags.DEFINE_string("images", f"{presets.BSDS500}/train", "image folder, or 'embedded'")
_LIMIT = flags.DEFINE_integer("limit", 40, "use only the first N images (0: all)")
_CROP = flags.DEFINE_integer("crop", 96, "side of the random crop taken from each image")
_SCALES = flags.DEFINE_integer("scales", 4, "MS-SSIM scales (4 fit 96-pixel crops)")
_MSE_WEIGHT = flags.DEFINE_float("mse_weight", 0.0, "rd.distortion's MSE term")
_COLOUR_WEIGHT = flags.DEFINE_float("colour_weight", 0.0, "rd.distortion's block-mean (colour) term")
_SEED = flags.DEFINE_integer("seed", 0, "crop positions and noise")


def damages(crop: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
  x = crop.astype(np.float32)
  grey = np.repeat(x.mean(axis=-1, keepdims=True), 3, axis=-1)
  return {"desaturate_50%": 0.5 * x + 0.5 * grey,
          "cast_+15_-15_0": np.clip(x + np.array([15.0, -15.0, 0.0], np.float32), 0, 255),
          "noise_sd_8": np.clip(x + rng.normal(0, 8, x.shape).astype(np.float32), 0, 255)}


def main(argv):
  del argv
  rng = np.random.default_rng(_SEED.value)
  size = _CROP.value
  images = [image for image in image_set(_IMAGES.value, _LIMIT.value).values() if min(image.shape[:2]) >= size]
  if not images:
    raise app.UsageError(f"no image in {_IMAGES.value} is at least {size} pixels on its shorter side")
  distortion = jax.jit(lambda a, b: rd.distortion(a[None], b[None], "ms_ssim", _SCALES.value, _MSE_WEIGHT.value,
                                                  _COLOUR_WEIGHT.value))
  totals = {}
  for image in images:
    top, left = rng.integers(0, image.shape[0] - size + 1), rng.integers(0, image.shape[1] - size + 1)
    crop = image[top:top + size, left:left + size]
    for name, damaged in damages(crop, rng).items():
      mse, value = float(metrics.mse(crop, damaged)), float(distortion(crop.astype(np.float32), damaged))
      totals.setdefault(name, []).append((mse, value))
  for name, rows in totals.items():
    mse, value = np.mean(rows, axis=0)
    print(json.dumps({"damage": name, "crop": size, "images": len(rows), "mse": round(mse, 2),
                      "distortion": round(value, 5), "distortion_per_1000_mse": round(1000 * value / mse, 4)}))


if __name__ == "__main__":
  app.run(main)
