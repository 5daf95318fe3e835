"""The multiplication budget, scaled to this machine: a small CIFAR-10 CNN with sum-product convolutions (issue #35).

    python -m experiments.strassen_cifar --out=runs/strassen-cifar      # `make strassen-cifar`

Networks, each counted exactly (``sumprod.OpCount``: multiplications, additions, parameters per 32×32 image):
  * ``teacher``: four 3×3 convolutions (width c, 2c, 4c, 8c; batch norm, ReLU, 2×2 max pooling), global average
    pooling, a dense layer to 10 classes; full precision;
  * ``spn-p1-tT``: every convolution a ``SumProdConv`` (block 1) warm-started as the T-term ternary expansion of the
    teacher's kernel (``SumProdConv.load_plain``), then the paper's stages 2 and 3 (ternary W_b, W_c
    straight-through; then W_b, W_c frozen and masked from the optimizer), distilled from the teacher;
  * ``spn-p2-rR``: sum-product convolutions over 2×2 output blocks with R × C_out hidden units per block and batch
    norm on them, trained from scratch in the paper's three stages (full precision, ternary, frozen), distilled;
  * ``plain-wW``: the teacher's architecture at width W, distilled the same way: what the same multiplications buy
    in a plain network.
Distillation: (1 − β)·cross-entropy + β·T²·KL(teacher ‖ student) at temperature T. Training on the first
``--train_images`` of a seeded shuffle of CIFAR-10 train (JPEG-decoded: the shared set's pixels), random crops and
flips; top-1 on the 10,000 test images. Writes results.json, results.md and accuracy-vs-multiplications.png.
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import app, flags
from flax import nnx
from PIL import Image

from compzoo.errors import UsageError
from compzoo.nn import sumprod
from experiments.configs.presets import CIFAR10
from experiments.launch import positive_ints

FLAGS = flags.FLAGS
flags.DEFINE_string("out", "runs/strassen-cifar", "folder for results.json, results.md and the plot")
flags.DEFINE_integer("width", 16, "the teacher's first width c (then 2c, 4c, 8c)")
flags.DEFINE_list("terms", ["1", "2", "4"], "ternary terms of the warm-started block-1 networks")
flags.DEFINE_list("block2_hidden", ["1", "2"], "hidden units per output channel of the 2×2-block networks")
flags.DEFINE_list("plain_widths", ["1", "2", "4"], "widths c of the plain networks")
flags.DEFINE_integer("train_images", 20000, "training images (a seeded sample of CIFAR-10 train; 0: all)")
flags.DEFINE_integer("epochs", 12, "epochs of the teacher, the plain networks and the from-scratch full stage")
flags.DEFINE_integer("ternary_epochs", 4, "epochs of the ternary stage")
flags.DEFINE_integer("frozen_epochs", 2, "epochs of the frozen stage")
flags.DEFINE_integer("batch", 128, "images per step")
flags.DEFINE_float("learning_rate", 2e-3, "Adam's peak learning rate (cosine decay in each stage)")
flags.DEFINE_float("warm_ternary_learning_rate", 2e-5, "the warm-started networks' ternary stage: Adam moves "
                   "every latent weight by about this much per step, so a large one scrambles the expansion's levels")
flags.DEFINE_float("temperature", 4.0, "distillation temperature")
flags.DEFINE_float("distill", 0.7, "β: the distillation term's weight")
flags.DEFINE_integer("test_images", 0, "test images scored (a seeded sample; 0: all 10,000)")
flags.DEFINE_integer("seed", 0, "shuffle, augmentation and initialisation seed")

CLASSES = 10
SIDE = 32


def load_split(name: str, count: int = 0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
  """CIFAR-10 from the shared zip (``<class>/<n>.jpg``, classes in sorted order) -> uint8 N×32×32×3, int32 labels;
  ``count`` > 0: a seeded sample of that many (the archive is in class order), only those decoded."""
  path = Path(CIFAR10) / f"{name}.zip"
  if not path.is_file():
    raise UsageError(f"no CIFAR-10 archive at {path}")
  with zipfile.ZipFile(path) as archive:
    names = sorted(n for n in archive.namelist() if n.endswith(".jpg"))
    classes = sorted({n.split("/")[0] for n in names})
    if not 0 <= count <= len(names):
      raise UsageError(f"{path} holds {len(names)} images; asked for {count}")
    if count:
      names = [names[i] for i in np.random.default_rng(seed).permutation(len(names))[:count]]
    images = np.stack([np.asarray(Image.open(io.BytesIO(archive.read(n))).convert("RGB")) for n in names])
  labels = np.array([classes.index(n.split("/")[0]) for n in names], np.int32)
  if images.shape[1:] != (SIDE, SIDE, 3) or len(classes) != CLASSES:
    raise UsageError(f"{path}: expected 32×32 RGB images in {CLASSES} class folders")
  return images, labels


class Net(nnx.Module):
  """Four 3×3 convolutions (plain, or sum-product with ``block`` and ``hidden`` · C_out hidden units per block), each
  followed by batch norm, ReLU and 2×2 max pooling; global average pooling; a dense layer to 10 classes."""

  def __init__(self, width: int, *, rngs: nnx.Rngs, kind: str = "plain", block: int = 1, hidden: int = 1,
               norm: bool = False):
    widths = [3, width, 2 * width, 4 * width, 8 * width]
    convs, norms = [], []
    for inputs, outputs in zip(widths[:-1], widths[1:]):
      if kind == "plain":
        convs.append(nnx.Conv(inputs, outputs, (3, 3), rngs=rngs))
      else:
        convs.append(sumprod.SumProdConv(inputs, outputs, 3, hidden * outputs, block, rngs=rngs,
                                         norm=norm))
      norms.append(nnx.BatchNorm(outputs, rngs=rngs))
    self.convs, self.norms = nnx.List(convs), nnx.List(norms)
    self.head = nnx.Linear(widths[-1], CLASSES, rngs=rngs)

  def __call__(self, x):
    x = jnp.asarray(x, jnp.float32) / 127.5 - 1.0
    for conv, norm in zip(self.convs, self.norms):
      x = nnx.max_pool(jax.nn.relu(norm(conv(x))), (2, 2), (2, 2))
    return self.head(x.mean(axis=(1, 2)))

  def ops(self) -> sumprod.OpCount:
    """Per 32×32 image. Plain: batch norm folds into the convolution (free); sum-product: its scale is one
    multiplication per output value (a W_c that mixes hidden units cannot take it). Pooling and ReLU: comparisons."""
    total, side = sumprod.OpCount(), SIDE
    for conv in self.convs:
      if isinstance(conv, nnx.Conv):
        _, _, inputs, outputs = conv.kernel.shape
        total += sumprod.conv_ops(side, side, 3, inputs, outputs)
      else:
        outputs = conv.w_c.shape[-1]
        total += conv.ops(side, side) + sumprod.OpCount(side * side * outputs, side * side * outputs, 2 * outputs)
      side //= 2
    features = self.head.kernel.shape[0]
    return total + sumprod.OpCount(features, features * (side * side - 1)) + sumprod.dense_ops(features, CLASSES)


def _augment(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
  """Random 32×32 crops of the images reflect-padded by 4 pixels, and horizontal flips."""
  padded = np.pad(images, ((0, 0), (4, 4), (4, 4), (0, 0)), mode="reflect")
  tops, lefts = rng.integers(0, 9, len(images)), rng.integers(0, 9, len(images))
  out = np.stack([p[t:t + SIDE, l:l + SIDE] for p, t, l in zip(padded, tops, lefts)])
  flips = rng.random(len(images)) < 0.5
  out[flips] = out[flips, :, ::-1]
  return out


def _logits_of(model: Net, images: np.ndarray) -> np.ndarray:
  model.eval()
  run = nnx.jit(lambda m, x: m(x))
  logits = np.concatenate([np.asarray(run(model, images[i:i + 500])) for i in range(0, len(images), 500)])
  model.train()
  return logits


def _train(model: Net, data, epochs: int, mode: str | None, teacher_logits, rng: np.random.Generator,
           learning_rate: float | None = None) -> list:
  """Adam with cosine decay for ``epochs``; ``mode`` the sum-product stage (None: a plain network); with
  ``teacher_logits`` (of the un-augmented images: the teacher's view of each image) the loss distils."""
  images, labels = data
  if mode is not None:
    sumprod.set_mode(model, mode)
  steps_per_epoch = len(images) // FLAGS.batch
  steps = max(epochs * steps_per_epoch, 1)
  trainable = sumprod.TRAINABLE[mode or "full"]
  optimizer = nnx.Optimizer(model, optax.adam(optax.cosine_decay_schedule(learning_rate or FLAGS.learning_rate, steps)),
                            wrt=trainable)
  temperature, beta = FLAGS.temperature, FLAGS.distill if teacher_logits is not None else 0.0

  def loss_fn(model, x, y, soft):
    logits = model(x)
    hard = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    kl = optax.kl_divergence(jax.nn.log_softmax(logits / temperature), jax.nn.softmax(soft / temperature)).mean()
    return (1 - beta) * hard + beta * temperature**2 * kl

  @nnx.jit
  def step(model, optimizer, x, y, soft):
    loss, grads = nnx.value_and_grad(loss_fn, argnums=nnx.DiffState(0, trainable))(model, x, y, soft)
    optimizer.update(model, grads)
    return loss

  model.train()
  soft_all = teacher_logits if teacher_logits is not None else np.zeros((len(images), CLASSES), np.float32)
  losses = []
  for _ in range(epochs):
    order = rng.permutation(len(images))
    for i in range(steps_per_epoch):
      pick = order[i * FLAGS.batch:(i + 1) * FLAGS.batch]
      losses.append(float(step(model, optimizer, jnp.asarray(_augment(images[pick], rng)), jnp.asarray(labels[pick]),
                               jnp.asarray(soft_all[pick]))))
  return losses


def _accuracy(model: Net, test) -> float:
  images, labels = test
  return float(np.mean(np.argmax(_logits_of(model, images), axis=1) == labels))


def _row(name: str, model: Net, test, losses: list, started: float) -> dict:
  ops = model.ops()
  row = {"network": name, "accuracy": _accuracy(model, test), "train_s": round(time.perf_counter() - started, 1),
         "multiplications": ops.multiplications, "additions": ops.additions, "parameters": ops.parameters,
         "loss_first_last": [float(np.mean(losses[:20])), float(np.mean(losses[-20:]))] if losses else None}
  print(row, flush=True)
  return row


def _plot(rows: list, path: Path) -> None:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  figure, axes = plt.subplots(figsize=(6, 4))
  for prefix, marker, label in (("teacher", "*", "teacher (full precision)"), ("spn-p1", "o", "SPN, 1×1 blocks, "
                                "warm start"), ("spn-p2", "s", "SPN, 2×2 blocks, from scratch"),
                                ("plain", "^", "plain, narrower")):
    chosen = [r for r in rows if r["network"].startswith(prefix)]
    if chosen:
      axes.plot([r["multiplications"] for r in chosen], [100 * r["accuracy"] for r in chosen], marker, label=label,
                linestyle="-" if prefix == "plain" else "none")
      for r in chosen:
        axes.annotate(r["network"], (r["multiplications"], 100 * r["accuracy"]), fontsize=7)
  axes.set_xscale("log")
  axes.set_xlabel("multiplications per image")
  axes.set_ylabel("CIFAR-10 test top-1 (%)")
  axes.grid(alpha=0.3)
  axes.legend(fontsize=8)
  figure.tight_layout()
  figure.savefig(path, dpi=120)


def _check_flags() -> None:
  for name in ("terms", "block2_hidden", "plain_widths"):
    positive_ints(name, FLAGS[name].value)
  if min(FLAGS.width, FLAGS.batch, FLAGS.epochs) < 1 or min(FLAGS.ternary_epochs, FLAGS.frozen_epochs) < 0:
    raise UsageError("--width, --batch and --epochs must be at least 1, the other stages' epochs at least 0")
  if FLAGS.temperature <= 0 or not 0 <= FLAGS.distill <= 1:
    raise UsageError(f"--temperature must be positive and --distill in [0, 1], got {FLAGS.temperature}, "
                     f"{FLAGS.distill}")


def main(argv):
  del argv
  _check_flags()
  out = Path(FLAGS.out)
  out.mkdir(parents=True, exist_ok=True)
  rng = np.random.default_rng(FLAGS.seed)
  train = load_split("train", FLAGS.train_images, FLAGS.seed)
  test = load_split("test", FLAGS.test_images, FLAGS.seed + 1)
  rows = []
  started = time.perf_counter()
  teacher = Net(FLAGS.width, rngs=nnx.Rngs(FLAGS.seed))
  rows.append(_row("teacher", teacher, test, _train(teacher, train, FLAGS.epochs, None, None, rng), started))
  soft = _logits_of(teacher, train[0])
  for terms in positive_ints("terms", FLAGS.terms):
    student = Net(FLAGS.width, rngs=nnx.Rngs(FLAGS.seed), kind="spn", hidden=terms)
    for mine, theirs, norm, their_norm in zip(student.convs, teacher.convs, student.norms, teacher.norms):
      mine.load_plain(theirs.kernel[...], theirs.bias[...], terms=terms)
      nnx.update(norm, nnx.state(their_norm))
    nnx.update(student.head, nnx.state(teacher.head))
    sumprod.set_mode(student, "frozen")
    rows.append(_row(f"spn-p1-t{terms} (start)", student, test, [], time.perf_counter()))
    started = time.perf_counter()
    losses = _train(student, train, FLAGS.ternary_epochs, "ternary", soft, rng, FLAGS.warm_ternary_learning_rate)
    losses += _train(student, train, FLAGS.frozen_epochs, "frozen", soft, rng)
    rows.append(_row(f"spn-p1-t{terms}", student, test, losses, started))
  for hidden in positive_ints("block2_hidden", FLAGS.block2_hidden):
    started = time.perf_counter()
    student = Net(FLAGS.width, rngs=nnx.Rngs(FLAGS.seed), kind="spn", block=2, hidden=hidden, norm=True)
    losses = _train(student, train, FLAGS.epochs, "full", soft, rng)
    losses += _train(student, train, FLAGS.ternary_epochs, "ternary", soft, rng)
    losses += _train(student, train, FLAGS.frozen_epochs, "frozen", soft, rng)
    rows.append(_row(f"spn-p2-r{hidden}", student, test, losses, started))
  for width in positive_ints("plain_widths", FLAGS.plain_widths):
    started = time.perf_counter()
    plain = Net(width, rngs=nnx.Rngs(FLAGS.seed))
    rows.append(_row(f"plain-w{width}", plain, test, _train(plain, train, FLAGS.epochs, None, soft, rng), started))
  full = rows[0]
  lines = ["| network | test top-1 | multiplications | % of teacher | additions | parameters |",
           "|---|---|---|---|---|---|"]
  for r in rows:
    lines.append(f"| {r['network']} | {100 * r['accuracy']:.2f}% | {r['multiplications']:,} | "
                 f"{100 * r['multiplications'] / full['multiplications']:.2f} | {r['additions']:,} | "
                 f"{r['parameters']:,} |")
  table = "\n".join(lines) + "\n"
  (out / "results.md").write_text(table)
  (out / "results.json").write_text(json.dumps({"rows": rows, "flags": {n: FLAGS[n].value for n in (
      "width", "terms", "block2_hidden", "plain_widths", "train_images", "epochs", "ternary_epochs",
      "frozen_epochs", "batch", "learning_rate", "warm_ternary_learning_rate", "temperature", "distill",
      "test_images", "seed")}}, indent=1) + "\n")
  _plot(rows, out / "accuracy-vs-multiplications.png")
  print(table)


if __name__ == "__main__":
  from experiments import launch
  launch.run(lambda: app.run(main))
