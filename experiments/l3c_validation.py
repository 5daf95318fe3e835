"""The held-out images that L3C recipes and learning curves are scored on, and the score: a model's own bits
per sub-pixel on whole images. lossless-photos val (photographs with no JPEG history: what recipes are chosen
on since issue #32), CamVid's val split and BSDS500's val split box-downscaled by 2 (its JPEG history averaged
away); never Kodak or CamVid test, which are the reported sets."""

from experiments.configs.presets import BSDS500, CAMVID, LOSSLESS_PHOTOS

VALIDATION = {"lossless-photos-val": f"{LOSSLESS_PHOTOS}/val", "camvid-val": f"{CAMVID}/val/images",
              "bsds-val-x2": f"{BSDS500}/val"}


def validation_images(limit: int = 0, names=()) -> dict[str, list]:
  """Held-out images cropped to multiples of 8: lossless-photos val and CamVid val as they are, BSDS500 val
  box-downscaled by 2. ``names``: some of VALIDATION (default: all)."""
  from compzoo import data
  from compzoo.data.builders import downscale_image
  from compzoo.errors import UsageError
  unknown = set(names) - set(VALIDATION)
  if unknown:
    raise UsageError(f"unknown validation sets {', '.join(sorted(unknown))}; use some of {', '.join(VALIDATION)}")
  sets = {}
  for name, folder in VALIDATION.items():
    if names and name not in names:
      continue
    images = list(data.image_set(folder, limit).values())
    if name.endswith("-x2"):
      images = [downscale_image(image, 2) for image in images]
    sets[name] = cropped_to_8(images)
  return sets


def cropped_to_8(images) -> list:
  """Each image cropped to multiples of 8 (L3C's 3 scales halve it three times)."""
  return [image[: image.shape[0] // 8 * 8, : image.shape[1] // 8 * 8] for image in images]


def validation_bpsp(model, sets) -> dict[str, float]:
  """Mean over images of the model's bits per sub-pixel (its training rate, which real coding meets to
  within the coder's overhead)."""
  import numpy as np
  from flax import nnx

  @nnx.jit
  def bits(model, image):
    output = model(image[None])
    return sum(b.sum() for b in output.bits.values()) / (image.shape[0] * image.shape[1] * 3)

  return {name: float(np.mean([float(bits(model, image)) for image in images])) for name, images in sets.items()}
