"""Short L3C training runs at an equal budget, compared on held-out validation sets (issues #17 and #32):

    python -m experiments.l3c_recipes --recipes=x2,native,camvid,mix --steps=600 --out=runs/l3c-recipes
    python -m experiments.l3c_recipes --recipes=photos,photos-mix --steps=600 --out=runs/l3c-photo-recipes \
        --val_sets=lossless-photos-val   # the continuations of #32, chosen on lossless-photos val alone
    python -m experiments.l3c_recipes --recipes=photos-scratch --variant=cpu-rgb --seed=1 --steps=400 \
        --out=runs/l3c-ablation/cpu-rgb-s1   # one of the ablation's short runs (variants x seeds)

Each recipe changes one thing of the ``l3c.py:cpu`` config (its training data, crop and batch at the same
pixels per step, learning-rate schedule, width or depth) and trains ``--steps`` steps from scratch, ``--parallel``
runs at a time, each on one CPU thread (a finished run is not trained again). Recipes whose name starts with
``photos`` continue the shipped weights (``--weights``) at 5e-4, the fine-tuning rate of #17, on artefact-free
photographs. Then every export's bits per sub-pixel are computed on ``--val_sets`` (experiments/l3c_validation.py),
never on Kodak or CamVid test, which are the reported sets. Writes ``OUT/recipes.md`` and ``OUT/recipes.json``.
"""

import functools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from absl import app, flags, logging

from compzoo.errors import UsageError
from experiments import launch
from experiments.configs import presets

FLAGS = flags.FLAGS
flags.DEFINE_list("recipes", [], "Recipes to run (default: all of RECIPES).")
flags.DEFINE_integer("steps", 600, "Training steps of every recipe.")
flags.DEFINE_integer("parallel", 2, "Runs at a time, one CPU thread each.")
flags.DEFINE_string("out", "runs/l3c-recipes", "One workdir per recipe, and the tables.")
flags.DEFINE_integer("val_limit", 0, "Use the first N images of each validation set (0: all).")
flags.DEFINE_list("val_sets", [], "Validation sets to score on (default: all of l3c_validation.VALIDATION).")
flags.DEFINE_string("weights", "l3c", "The shipped entry (or export folder) that 'photos' recipes continue.")
flags.DEFINE_integer("seed", 0, "Training seed of every run (a second seed gives the spread).")
flags.DEFINE_enum("variant", "cpu", ["cpu", "cpu-rgb", "cpu-rgb-shared"],
                  "The l3c.py variant every recipe changes: the ablation runs the same recipes on each.")
flags.DEFINE_string("worker", None, "Internal: train this one recipe in this process.")

_CAMVID = "../shared/data/camvid"
_DATA = {  # training data choices: data sections of experiments/configs/presets.DATASETS' kind
    "bsds": dict(source="folder", path=presets.BSDS500, train_splits="train+test"),
    "camvid": dict(source="paired_folders", path=_CAMVID),
    "mix": dict(presets.DATASETS["bsds500+camvid"]),
    "photos": dict(presets.DATASETS["lossless-photos"]),
    # lossless-photos train at native size and halved (smoother, darker-looking content at another scale), and
    # BSDS500 train halved: its JPEG grid gone (mean block-edge ratio 0.98 / 0.99 against 1.4-1.95 for
    # JPEG-decoded photos, lossless-photos' README), a lossy source with the variety the 47 photos lack.
    "photos-mix": dict(source="mixture", parts=[
        dict(presets.DATASETS["lossless-photos"], data_dir=presets.DATA_DIR),
        dict(presets.DATASETS["lossless-photos"], data_dir=presets.DATA_DIR, downscale=2),
        dict(source="folder", path=presets.BSDS500, downscale=2, data_dir=presets.DATA_DIR)]),
}
_CONTINUE = {"train.init_from": "WEIGHTS", "optimizer.learning_rate": 5e-4}
# name: (what it changes, config overrides as dotted paths). The first is the shipped recipe before #17.
RECIPES = {
    "x2": ("BSDS500 train, downscaled by 2 (the old recipe)", {}),
    "native": ("BSDS500 train+test at native resolution", {"data": _DATA["bsds"]}),
    "camvid": ("CamVid train frames", {"data": _DATA["camvid"]}),
    "mix": ("native BSDS500 + CamVid train", {"data": _DATA["mix"]}),
    "mix-crop128": ("mix, 2 crops of 128 (same pixels per step)", {"data": _DATA["mix"], "data.crop": 128,
                                                                    "data.batch_size": 2}),
    "mix-lr3e-3": ("mix, learning rate 3e-3", {"data": _DATA["mix"], "optimizer.learning_rate": 3e-3}),
    "mix-wide": ("mix, Cf=48 (2.2x the FLOPs)", {"data": _DATA["mix"], "model.features": 48}),
    "mix-shallow": ("mix, 2 residual blocks", {"data": _DATA["mix"], "model.blocks": 2}),
    "photos": ("continued on lossless-photos train", {"data": _DATA["photos"], **_CONTINUE}),
    "photos-mix": ("continued on lossless-photos train, the same halved, BSDS500 train halved",
                   {"data": _DATA["photos-mix"], **_CONTINUE}),
    "photos-mix-crop128": ("photos-mix, 2 crops of 128", {"data": _DATA["photos-mix"], "data.crop": 128,
                                                          "data.batch_size": 2, **_CONTINUE}),
    "photos-dark": ("photos, half the crops darkened by 0.15-0.8", {"data": _DATA["photos"],
                                                                     "data.darken": (0.15, 0.8), **_CONTINUE}),
    "photos-lr1e-3": ("photos, learning rate 1e-3", {"data": _DATA["photos"], **_CONTINUE,
                                                     "optimizer.learning_rate": 1e-3}),
    "photos-scratch": ("from scratch on lossless-photos train at 3e-3 (the ablation's short runs)",
                       {"data": _DATA["photos"], "optimizer.learning_rate": 3e-3}),
    "photos-mix-dark": ("photos-mix, half the crops darkened by 0.15-0.8",
                        {"data": _DATA["photos-mix"], "data.darken": (0.15, 0.8), **_CONTINUE}),
}


def recipe_config(name: str, steps: int, weights: str = "l3c", seed: int = 0, variant: str = "cpu"):
  from experiments.configs import l3c
  if name not in RECIPES:
    raise UsageError(f"unknown recipe {name!r}; use one of {', '.join(RECIPES)}")
  config = l3c.get_config(variant)
  config.data = presets.data("bsds500", config.data.crop, config.data.batch_size, downscale=2)  # the old recipe
  config.optimizer.learning_rate = 1e-3
  for path, value in RECIPES[name][1].items():
    if path == "data":  # a whole data section: keep the crop and batch
      config.data = dict(value, crop=config.data.crop, batch_size=config.data.batch_size,
                         data_dir=presets.DATA_DIR)
      continue
    *parents, leaf = path.split(".")
    section = config
    for parent in parents:
      section = section[parent]
    section[leaf] = shipped_or_folder(weights) if value == "WEIGHTS" else value
  config.train.steps = steps
  config.train.seed = seed
  config.train.eval_every = steps
  config.train.checkpoint_every = max(100, steps // 4)
  return config


def shipped_or_folder(weights: str) -> str:
  from compzoo.codecs.learned import shipped
  return weights if Path(weights).is_dir() else str(shipped(weights))


def _train_one(name: str):
  from compzoo.train.loop import train_and_evaluate
  train_and_evaluate(recipe_config(name, FLAGS.steps, FLAGS.weights, FLAGS.seed, FLAGS.variant),
                     Path(FLAGS.out) / name, progress=False)


def launch_worker(recipe: str, out, steps: int, weights: str = "l3c", seed: int = 0, variant: str = "cpu"
                  ) -> subprocess.Popen:
  """Trains one recipe into OUT/RECIPE in a process of its own, on one CPU thread, logging to OUT/RECIPE.log."""
  env = dict(os.environ, XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
  Path(out).mkdir(parents=True, exist_ok=True)
  log = open(Path(out) / f"{recipe}.log", "w")
  return subprocess.Popen([sys.executable, "-m", "experiments.l3c_recipes", f"--worker={recipe}", f"--steps={steps}",
                           f"--out={out}", f"--weights={weights}", f"--seed={seed}", f"--variant={variant}"],
                          env=env, stdout=log, stderr=log)


def run_pool(jobs: dict, parallel: int) -> dict:
  """Runs ``jobs`` ({key: (start: a function returning the Popen, its log path)}) ``parallel`` at a time;
  -> {key: minutes it ran}. A failed job stops the pool, naming its log."""
  todo, running, started, minutes = list(jobs), {}, {}, {}
  while todo or running:
    while todo and len(running) < parallel:
      key = todo.pop(0)
      running[key], started[key] = jobs[key][0](), time.time()
    time.sleep(5)
    for key, process in list(running.items()):
      if process.poll() is not None:
        del running[key]
        if process.returncode:
          raise RuntimeError(f"run {key} failed; see {jobs[key][1]}")
        minutes[key] = (time.time() - started[key]) / 60
  return minutes


def _compare():
  from compzoo import exports
  from experiments.l3c_validation import validation_bpsp, validation_images
  names = FLAGS.recipes or list(RECIPES)
  unknown = [name for name in names if name not in RECIPES]
  if unknown:
    raise app.UsageError(f"unknown recipes {', '.join(unknown)}; use some of {', '.join(RECIPES)}")
  out = Path(FLAGS.out)
  out.mkdir(parents=True, exist_ok=True)
  jobs = {name: (functools.partial(launch_worker, name, out, FLAGS.steps, FLAGS.weights, FLAGS.seed, FLAGS.variant),
                  out / f"{name}.log") for name in names if not (out / name / "export").is_dir()}
  for name, minutes in run_pool(jobs, FLAGS.parallel).items():
    (out / name / "minutes.txt").write_text(f"{minutes:.1f}\n")
  sets = validation_images(FLAGS.val_limit, FLAGS.val_sets)
  rows = []
  for name in names:
    bpsp = validation_bpsp(exports.load_model(out / name / "export"), sets)
    minutes = (out / name / "minutes.txt").read_text().strip() if (out / name / "minutes.txt").exists() else ""
    rows.append(dict(recipe=name, change=RECIPES[name][0], minutes=minutes, **bpsp))
    print(rows[-1], flush=True)
  (out / "recipes.json").write_text(json.dumps(rows, indent=1) + "\n")
  header = ["recipe", "what changes", "minutes (1 thread)"] + [f"{name} bpsp" for name in sets]
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  for row in rows:
    lines.append("| " + " | ".join([row["recipe"], row["change"], row["minutes"]]
                                   + [f"{row[name]:.4f}" for name in sets]) + " |")
  (out / "recipes.md").write_text("\n".join(lines) + "\n")
  print("\n".join(lines))


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  logging.set_verbosity(logging.WARNING)
  launch.run(lambda: _train_one(FLAGS.worker) if FLAGS.worker else _compare())


if __name__ == "__main__":
  app.run(main)
