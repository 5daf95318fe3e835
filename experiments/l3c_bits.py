"""Where L3C's bits go (issue #32): per scale and per colour channel, image by image, for any L3C export.

    python -m experiments.l3c_bits --images=../shared/data/lossless-photos/val --out=runs/l3c-bits
    python -m experiments.l3c_bits --models=l3c,l3c-rgb,runs/l3c-photos/export --images=...

Every figure is the model's own rate (the entropy of its predictions on the real symbols), which real coding
meets to within 0.1% (docs/l3c.md), in bits per sub-pixel of the image: ``x`` = the pixels given z1 (and R,
G|R, B|R,G), ``z1`` = z1 given z2, ..., ``zS`` = the uniform top scale. Beside them, the pixel mixture's
calibration: the entropy of its predicted distributions against the bits it actually pays. Predicted above paid:
the model is less sure than it could be (too wide: a floor on easy pictures); below: overconfident. PNG's
bpsp orders the images from easy to busy. Writes OUT/bits.json and OUT/bits.md.
"""

import json
from pathlib import Path

from absl import app, flags

from experiments.configs import presets

FLAGS = flags.FLAGS
flags.DEFINE_list("models", ["l3c", "l3c-rgb"], "Shipped L3C entries or export folders.")
flags.DEFINE_string("images", f"{presets.LOSSLESS_PHOTOS}/val", "Folder of images.")
flags.DEFINE_string("out", "runs/l3c-bits", "Where bits.json and bits.md go.")
flags.DEFINE_integer("limit", 0, "Use the first N images (0: all).")


def load(name: str):
  from compzoo import exports
  from compzoo.codecs.learned import shipped
  return exports.load_model(Path(name) if Path(name).is_dir() else shipped(name))


def breakdown(model, image):
  """-> {'x': bpsp, 'x.R', 'x.G|R', 'x.B|RG', 'z1', ..., 'total', 'x_entropy', 'x_paid'} for one image
  (cropped to a multiple of 2^scales)."""
  import jax.numpy as jnp
  from flax import nnx

  multiple = 2 ** model.scales
  image = image[: image.shape[0] // multiple * multiple, : image.shape[1] // multiple * multiple]

  @nnx.jit
  def run(model, image):
    maps, params = model.bit_maps(image[None])
    sums = {name: m.sum() for name, m in maps.items()}
    sums.update({f"x.{c}": maps["x"][..., i].sum() for i, c in enumerate(("R", "G|R", "B|RG"))})
    # Calibration on every 31st pixel (the full 256-level tables of all pixels would not fit in memory).
    rows = params.reshape(-1, 3, params.shape[-1])[::31]
    known = image.reshape(-1, 3).astype(jnp.int32)[::31]
    entropy, paid = [], []
    for channel in range(3):
      p = model.pixel_model.channel_probabilities(rows, known, channel)
      entropy.append(-jnp.sum(p * jnp.log2(jnp.maximum(p, 1e-30)), axis=-1).mean())
      paid.append(-jnp.log2(jnp.maximum(jnp.take_along_axis(p, known[:, channel:channel + 1], -1), 1e-30)).mean())
    return sums, jnp.mean(jnp.stack(entropy)), jnp.mean(jnp.stack(paid))

  sums, entropy, paid = run(model, jnp.asarray(image))
  subpixels = image.shape[0] * image.shape[1] * 3
  row = {name: float(value) / subpixels for name, value in sums.items()}
  row["total"] = sum(row[name] for name in sums if "." not in name)
  row.update(x_entropy=float(entropy), x_paid=float(paid))
  return row


def png_bpsp(image) -> float:
  import io
  from PIL import Image
  buffer = io.BytesIO()
  Image.fromarray(image).save(buffer, format="PNG", optimize=True)
  return 8 * buffer.tell() / image.size


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  from compzoo import data
  images = data.image_set(FLAGS.images, FLAGS.limit)
  reference = {name: png_bpsp(image) for name, image in images.items()}
  order = sorted(images, key=reference.get)
  results = {}
  for name in FLAGS.models:
    model = load(name)
    results[name] = {image: breakdown(model, images[image]) for image in order}
    print(name, "done", flush=True)
  out = Path(FLAGS.out)
  out.mkdir(parents=True, exist_ok=True)
  (out / "bits.json").write_text(json.dumps(dict(png=reference, models=results), indent=1) + "\n")
  lines = []
  for name, rows in results.items():
    parts = [key for key in next(iter(rows.values())) if key not in ("total", "x_entropy", "x_paid")]
    header = ["image", "PNG", "total"] + parts + ["x: predicted entropy", "x: paid"]
    lines += [f"\n{name} (bpsp; calibration in bits per sub-pixel on every 31st pixel)\n",
              "| " + " | ".join(header) + " |",
              "|" + "---|" * len(header)]
    for image in order:
      row = rows[image]
      lines.append("| " + " | ".join([image, f"{reference[image]:.3f}", f"{row['total']:.3f}"]
                                     + [f"{row[p]:.3f}" for p in parts]
                                     + [f"{row['x_entropy']:.3f}", f"{row['x_paid']:.3f}"]) + " |")
    mean = {key: sum(r[key] for r in rows.values()) / len(rows) for key in ["total"] + parts}
    lines.append("| mean | " + f"{sum(reference.values()) / len(reference):.3f} | {mean['total']:.3f} | "
                 + " | ".join(f"{mean[p]:.3f}" for p in parts) + " | | |")
  (out / "bits.md").write_text("\n".join(lines) + "\n")
  print("\n".join(lines))


if __name__ == "__main__":
  app.run(main)
