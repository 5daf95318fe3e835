"""Bits per sub-pixel against training hours, from runs' own logs and checkpoints (issue #17):

    python -m experiments.training_curves --runs=l3c=runs/l3c-long,l3c-rgb=runs/l3c-rgb-long \
        --out=docs/l3c-training-curves.png

Training hours are the sum of metrics.csv's ``interval_s`` (each logged interval's wall time, so resumed
slices add up and evaluation and checkpointing are left out). Two panels: the training bpsp (a running mean of
the logged rows) and the validation bpsp of every kept checkpoint on the held-out sets of
``experiments/l3c_validation.py`` (``--val_sets``: lossless-photos val, CamVid val, BSDS500 val downscaled by 2;
never a reported set). Writes the
PNG and a JSON of the points beside it.
"""

import csv
import json
from pathlib import Path

from absl import app, flags, logging

from compzoo.errors import UsageError
from experiments import launch

FLAGS = flags.FLAGS
flags.DEFINE_list("runs", None, "LABEL=WORKDIR of each run.")
flags.DEFINE_string("out", "runs/training-curves.png", "The plot; its points go to the same name with .json.")
flags.DEFINE_integer("val_limit", 0, "Use the first N images of each validation set (0: all).")
flags.DEFINE_list("val_sets", [], "Validation sets to score on (default: all of l3c_validation.VALIDATION).")
flags.mark_flags_as_required(["runs"])


def training_hours(workdir) -> tuple[list[int], list[float], list[float]]:
  """-> (steps, cumulative hours, bpsp) of metrics.csv's rows."""
  path = Path(workdir) / "metrics.csv"
  if not path.is_file():
    raise UsageError(f"{workdir}: no metrics.csv")
  with path.open(newline="") as f:
    rows = list(csv.DictReader(f))
  if not rows or "interval_s" not in rows[0]:
    raise UsageError(f"{path} has no interval_s column (written by runs since issue #17)")
  steps, hours, bpsp, total = [], [], [], 0.0
  for row in rows:
    total += float(row["interval_s"])
    steps.append(int(row["step"]))
    hours.append(total / 3600)
    bpsp.append(float(row["bpsp"]))
  return steps, hours, bpsp


def checkpoint_bpsp(workdir, sets) -> list[tuple[int, dict[str, float]]]:
  """Validation bpsp of every checkpoint the run kept."""
  from compzoo import models
  from compzoo.checkpoints import Checkpoints
  from experiments.l3c_validation import validation_bpsp
  checkpoints = Checkpoints(workdir, keep=10_000)
  try:
    points = []
    for step in checkpoints.manager.all_steps():
      model = models.build(checkpoints.config(step).model)
      checkpoints.restore(step, model)
      points.append((step, validation_bpsp(model, sets)))
      print(f"{workdir} step {step}: {points[-1][1]}", flush=True)
    return points
  finally:
    checkpoints.close()


def _running_mean(values, width=5):
  return [sum(values[max(0, i - width + 1): i + 1]) / len(values[max(0, i - width + 1): i + 1])
          for i in range(len(values))]


def _curves():
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  import numpy as np

  from experiments.l3c_validation import validation_images
  sets = validation_images(FLAGS.val_limit, FLAGS.val_sets)
  data = {}
  for spec in FLAGS.runs:
    label, _, workdir = spec.rpartition("=")
    steps, hours, bpsp = training_hours(workdir)
    checkpoints = checkpoint_bpsp(workdir, sets)
    data[label or workdir] = dict(workdir=workdir, steps=steps, hours=hours, train_bpsp=bpsp, checkpoints=[
        dict(step=step, hours=float(np.interp(step, steps, hours)), **values) for step, values in checkpoints])
  figure, (train_axes, val_axes) = plt.subplots(1, 2, figsize=(11, 4.2))
  for label, run in data.items():
    line, = train_axes.plot(run["hours"], _running_mean(run["train_bpsp"]), label=label)
    for (name, style) in zip(sets, ("-o", "--s", ":^")):
      val_axes.plot([p["hours"] for p in run["checkpoints"]], [p[name] for p in run["checkpoints"]], style,
                    color=line.get_color(), label=f"{label}, {name}")
  train_axes.set(xlabel="training hours (2-core CPU unless said)", ylabel="bpsp", title="training crops")
  val_axes.set(xlabel="training hours", ylabel="bpsp", title="held-out validation (whole images)")
  for axes in (train_axes, val_axes):
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
  figure.tight_layout()
  out = Path(FLAGS.out)
  out.parent.mkdir(parents=True, exist_ok=True)
  figure.savefig(out, dpi=110)
  out.with_suffix(".json").write_text(json.dumps(data, indent=1) + "\n")
  print(f"wrote {out} and {out.with_suffix('.json')}")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  logging.set_verbosity(logging.WARNING)
  launch.run(_curves)


if __name__ == "__main__":
  app.run(main)
