"""A decoder that multiplies less: bmshj2018-factorized's synthesis as sum-product layers (StrassenNets, issue #35).

    python -m experiments.strassen_decoder --out=runs/strassen-decoder
    python -m experiments.strassen_decoder --quality=1 --terms=4 --plain_widths= --out=runs/strassen-decoder-q1 \
        --chosen=runs/strassen-decoder/chosen
    python -m experiments.ship_weights --family=bmshj2018-factorized-spn --runs=runs/strassen-decoder/chosen
    # all three: `make strassen-decoder`

The shipped point's analysis transform and prior stay frozen, so every file's symbols and bytes are the shipped
point's; only distortion moves. Decoders, all scored on the same symbols:
  * ``teacher``: the shipped synthesis (5×5 stride-2 transposed convolutions, IGDN);
  * ``spn-tT``: sub-pixel sum-product stages warm-started as the T-term ternary expansion of the teacher's kernels
    (``bmshj2018_spn.load_teacher``), scored at the start, after ``--ternary_steps`` in the ternary mode (W_b, W_c
    straight-through) and after ``--frozen_steps`` with W_b, W_c frozen (the paper's third stage; the teacher is
    its first);
  * ``plain-wW``: the teacher's architecture narrowed to width W, trained from scratch for ``--plain_steps``
    (no teacher to start from), the multiplications of a sum-product decoder spent on a plain one.
Training: MSE to the original crops of BSDS500 train, on the frozen encoder's rounded latents. The terms to ship are
chosen on BSDS500 val; Kodak and CamVid test are reported and never chosen on. Writes results.json, results.md
(PSNR, bpp, multiplications, additions and parameters per decoder and per pixel, decode wall time), every
sum-product decoder's export (spn-tT/) and the chosen one as chosen/q<quality>/export, what ship_weights reads.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import app, flags
from flax import nnx

from compzoo import exports, metrics, zoo
from compzoo.codecs import learned
from compzoo.data.images import image_set
from compzoo.errors import UsageError
from compzoo.models import bmshj2018, bmshj2018_spn, pad_to_multiple
from compzoo.nn import sumprod
from experiments.configs.presets import BSDS500, CAMVID, KODAK
from experiments.launch import positive_ints

FLAGS = flags.FLAGS
flags.DEFINE_string("out", "runs/strassen-decoder", "folder for results.json, results.md and the trained decoders")
flags.DEFINE_integer("quality", 2, "the bmshj2018-factorized point whose decoder is replaced")
flags.DEFINE_list("terms", ["1", "2", "4"], "ternary terms per sum-product stage (multiplications: terms × 4C)")
flags.DEFINE_list("plain_widths", ["14", "24"], "widths of the narrowed plain decoders")
flags.DEFINE_integer("crop", 128, "training crop side (a multiple of 16)")
flags.DEFINE_integer("train_images", 0, "BSDS500 train photos to crop (0: all 200)")
flags.DEFINE_integer("crops_per_image", 6, "random crops per BSDS500 train photo, drawn once")
flags.DEFINE_integer("batch", 8, "crops per step")
flags.DEFINE_integer("ternary_steps", 300, "steps of the ternary stage")
flags.DEFINE_integer("frozen_steps", 1200, "steps of the frozen stage")
flags.DEFINE_integer("plain_steps", 3000, "steps of each narrowed plain decoder")
flags.DEFINE_float("learning_rate", 5e-4, "Adam's learning rate (cosine decay in each stage)")
flags.DEFINE_float("ternary_learning_rate", 2e-5, "the ternary stage's: Adam moves every latent weight by about this "
                   "much per step whatever its gradient, so a large one flips the warm start's levels at random")
flags.DEFINE_integer("limit", 0, "images per evaluation set (0: all); CamVid test is capped at 24")
flags.DEFINE_float("within_db", 0.5, "ship the fewest terms within this many dB of the teacher on BSDS500 val")
flags.DEFINE_integer("seed", 0, "crop draw and initialisation seed")
flags.DEFINE_string("chosen", "", "folder for the chosen decoder's q<quality>/export (default: OUT/chosen), so runs "
                    "at several qualities fill one folder for ship_weights")

SETS = {"bsds-val": f"{BSDS500}/val", "kodak": KODAK, "camvid-test": f"{CAMVID}/test/images"}
CHOICE_SET = "bsds-val"
CAMVID_CAP = 24
MAX_CROP = 320  # BSDS500's photos are 481×321 or 321×481


def _training_crops(model, rng: np.random.Generator):
  """Random crops of BSDS500 train and the frozen encoder's rounded latents of each, drawn once."""
  crops = []
  for image in image_set(f"{BSDS500}/train", limit=FLAGS.train_images).values():
    for _ in range(FLAGS.crops_per_image):
      top = rng.integers(0, image.shape[0] - FLAGS.crop + 1)
      left = rng.integers(0, image.shape[1] - FLAGS.crop + 1)
      crops.append(image[top:top + FLAGS.crop, left:left + FLAGS.crop])
  crops = np.stack(crops)
  analyze = jax.jit(lambda x: jnp.round(model.analyze(x)))
  latents = np.concatenate([np.asarray(analyze(crops[i:i + 64])) for i in range(0, len(crops), 64)])
  return latents, crops.astype(np.float32)


def _train(synthesis: nnx.Module, latents, crops, steps: int, mode: str | None, rng: np.random.Generator,
           learning_rate: float) -> list:
  """Adam on MSE to the originals; ``mode`` sets the sum-product layers' stage (None: a plain decoder)."""
  if mode is not None:
    sumprod.set_mode(synthesis, mode)
  schedule = optax.cosine_decay_schedule(learning_rate, max(steps, 1))
  trainable = sumprod.TRAINABLE[mode or "full"]
  optimizer = nnx.Optimizer(synthesis, optax.adam(schedule), wrt=trainable)

  @nnx.jit
  def step(synthesis, optimizer, y, x):
    loss, grads = nnx.value_and_grad(lambda s: jnp.mean(jnp.square(s(y) * 255.0 - x)),
                                     argnums=nnx.DiffState(0, trainable))(synthesis)
    optimizer.update(synthesis, grads)
    return loss

  losses = []
  for _ in range(steps):
    pick = rng.integers(0, len(crops), FLAGS.batch)
    losses.append(float(step(synthesis, optimizer, jnp.asarray(latents[pick]), jnp.asarray(crops[pick]))))
  return losses


def _evaluate(synthesis: nnx.Module, sets: dict) -> dict:
  """Mean PSNR (of the rounded, clipped pixels a file decodes to) per set, and the mean decode time of the
  synthesis per Kodak image, each shape compiled before it is timed."""
  run = nnx.jit(lambda s, y: jnp.clip(jnp.round(s(y) * 255.0), 0, 255))
  scores, compiled = {}, set()
  for name, items in sets.items():
    psnrs, seconds = [], []
    for latent, image in items:
      if latent.shape not in compiled:
        run(synthesis, latent).block_until_ready()
        compiled.add(latent.shape)
      start = time.perf_counter()
      pixels = np.asarray(run(synthesis, latent).block_until_ready())[0]
      seconds.append(time.perf_counter() - start)
      psnrs.append(metrics.psnr(image, pixels[:image.shape[0], :image.shape[1]].astype(np.uint8)))
    scores[name] = float(np.mean(psnrs))
    if name == "kodak":
      scores["kodak_decode_s"] = float(np.mean(seconds))
  return scores


def _evaluation_sets(model) -> tuple[dict, dict]:
  """{set: [(latents, image)]} and each set's real bpp through the shipped codec's files."""
  codec = zoo.make_codec(f"bmshj2018-factorized:quality={FLAGS.quality}")
  analyze = jax.jit(lambda x: jnp.round(model.analyze(x)))
  sets, bpp = {}, {}
  for name, folder in SETS.items():
    limit = min(FLAGS.limit or CAMVID_CAP, CAMVID_CAP) if name == "camvid-test" else FLAGS.limit
    images = image_set(folder, limit=limit)
    sets[name] = [(analyze(pad_to_multiple(image, 16)[None].astype(np.float32)), image) for image in images.values()]
    bpp[name] = float(np.mean([8 * len(codec.compress(image)) / (image.shape[0] * image.shape[1])
                               for image in images.values()]))
  return sets, bpp


def _row(name: str, synthesis, scores: dict, ops_of) -> dict:
  ops = ops_of(synthesis)
  return {"decoder": name, **scores, "multiplications": ops.multiplications, "additions": ops.additions,
          "parameters": ops.parameters}


def _markdown(rows: list, bpp: dict, teacher_mults: int, pixels: int) -> str:
  lines = ["bpp (the shipped point's files, every decoder): " + ", ".join(f"{k} {v:.3f}" for k, v in bpp.items()),
           "", "| decoder | BSDS500 val PSNR | Kodak PSNR | CamVid test PSNR | mults/pixel | % of teacher | "
           "adds/pixel | parameters | Kodak decode s |", "|---|---|---|---|---|---|---|---|---|"]
  for row in rows:
    lines.append(f"| {row['decoder']} | {row['bsds-val']:.2f} | {row['kodak']:.2f} | {row['camvid-test']:.2f} | "
                 f"{row['multiplications'] / pixels:.0f} | {100 * row['multiplications'] / teacher_mults:.1f} | "
                 f"{row['additions'] / pixels:.0f} | {row['parameters']:,} | {row['kodak_decode_s']:.3f} |")
  return "\n".join(lines) + "\n"


def main(argv):
  del argv
  if FLAGS.crop % 16 or not 16 <= FLAGS.crop <= MAX_CROP:
    raise UsageError(f"--crop must be a multiple of 16 from 16 to {MAX_CROP} (BSDS500's short side), "
                     f"got {FLAGS.crop}")
  if min(FLAGS.batch, FLAGS.crops_per_image) < 1 or min(FLAGS.ternary_steps, FLAGS.frozen_steps,
                                                         FLAGS.plain_steps, FLAGS.train_images) < 0:
    raise UsageError("--batch and --crops_per_image must be at least 1, the steps and --train_images at least 0")
  terms, widths = positive_ints("terms", FLAGS.terms), positive_ints("plain_widths", FLAGS.plain_widths)
  out = Path(FLAGS.out)
  out.mkdir(parents=True, exist_ok=True)
  teacher_export = exports.read(learned.shipped("bmshj2018-factorized", f"q{FLAGS.quality}"))
  teacher = teacher_export.model
  config = teacher_export.config["model"]
  rng = np.random.default_rng(FLAGS.seed)
  latents, crops = _training_crops(teacher, rng)
  sets, bpp = _evaluation_sets(teacher)
  # Operations counted on a Kodak-sized image (768×512: 48×32 latents), reported per pixel.
  pixels, ops_of = 768 * 512, lambda s: bmshj2018_spn.synthesis_ops(s, 32, 48)
  rows = [_row("teacher", teacher.synthesis, _evaluate(teacher.synthesis, sets), ops_of)]
  teacher_mults = rows[0]["multiplications"]
  print(rows[0], flush=True)
  curves, chosen = {}, None
  for t in terms:
    model = bmshj2018_spn.build(config["channels"], config["latent"], terms=t, rngs=nnx.Rngs(FLAGS.seed))
    bmshj2018_spn.load_teacher(model, teacher, t)
    rows.append(_row(f"spn-t{t} (start)", model.synthesis, _evaluate(model.synthesis, sets), ops_of))
    curves[f"spn-t{t}/ternary"] = _train(model.synthesis, latents, crops, FLAGS.ternary_steps, "ternary", rng,
                                         FLAGS.ternary_learning_rate)
    sumprod.set_mode(model, "frozen")
    rows.append(_row(f"spn-t{t} (ternary)", model.synthesis, _evaluate(model.synthesis, sets), ops_of))
    curves[f"spn-t{t}/frozen"] = _train(model.synthesis, latents, crops, FLAGS.frozen_steps, "frozen", rng,
                                        FLAGS.learning_rate)
    rows.append(_row(f"spn-t{t}", model.synthesis, _evaluate(model.synthesis, sets), ops_of))
    print(rows[-3:], flush=True)
    model_config = {**config, "name": bmshj2018_spn.ARCHITECTURE, "terms": t, "mode": "frozen"}
    exports.write(out / f"spn-t{t}", {"model": model_config, "command": "python -m experiments.strassen_decoder",
                                      "derived_from": f"bmshj2018-factorized/q{FLAGS.quality}"}, model)
    if chosen is None and rows[-1][CHOICE_SET] >= rows[0][CHOICE_SET] - FLAGS.within_db:
      chosen = t
  for width in widths:
    plain = bmshj2018.build(width, config["latent"], rngs=nnx.Rngs(FLAGS.seed))
    curves[f"plain-w{width}"] = _train(plain.synthesis, latents, crops, FLAGS.plain_steps, None, rng,
                                       FLAGS.learning_rate)
    rows.append(_row(f"plain-w{width}", plain.synthesis, _evaluate(plain.synthesis, sets), ops_of))
    print(rows[-1], flush=True)
  if terms and chosen is None:  # none within the margin: the best on the choice set
    chosen = max(terms, key=lambda t: next(r[CHOICE_SET] for r in rows if r["decoder"] == f"spn-t{t}"))
  if chosen is not None:
    target = Path(FLAGS.chosen or out / "chosen") / f"q{FLAGS.quality}" / "export"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(out / f"spn-t{chosen}", target)
  summary = {"quality": FLAGS.quality, "bpp": bpp, "rows": rows, "chosen_terms": chosen, "pixels": pixels,
             "losses": {k: [float(np.mean(v[i:i + 50])) for i in range(0, len(v), 50)] for k, v in curves.items()},
             "flags": {name: FLAGS[name].value for name in ("terms", "plain_widths", "crop", "train_images",
                                                            "crops_per_image", "batch",
                                                            "ternary_steps", "frozen_steps", "plain_steps",
                                                            "learning_rate", "ternary_learning_rate", "limit", "seed")}}
  (out / "results.json").write_text(json.dumps(summary, indent=1) + "\n")
  table = _markdown(rows, bpp, teacher_mults, pixels)
  if chosen is not None:
    table += f"\nchosen: spn-t{chosen} (the fewest terms within {FLAGS.within_db} dB of the teacher on {CHOICE_SET})\n"
  (out / "results.md").write_text(table)
  print(table)


if __name__ == "__main__":
  from experiments import launch
  launch.run(lambda: app.run(main))
