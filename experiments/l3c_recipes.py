"""Short L3C training runs at an equal budget, compared on held-out validation sets (issue #17):

    python -m experiments.l3c_recipes --steps=600 --out=runs/l3c-recipes            # every recipe
    python -m experiments.l3c_recipes --recipes=x2,native --steps=600 --out=runs/l3c-recipes

Each recipe changes one thing of the ``l3c.py:cpu`` config (its training data, crop and batch at the same
pixels per step, learning-rate schedule, width or depth) and trains ``--steps`` steps from scratch, ``--parallel``
runs at a time, each on one CPU thread (a finished run is not trained again). Then every export's bits per
sub-pixel are computed on the validation sets (CamVid's val split and BSDS500's val split box-downscaled by 2),
never on Kodak or CamVid test, which are the reported sets. Writes ``OUT/recipes.md`` and ``OUT/recipes.json``.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from absl import app, flags, logging

from experiments import launch
from experiments.configs import presets

FLAGS = flags.FLAGS
flags.DEFINE_list("recipes", [], "Recipes to run (default: all of RECIPES).")
flags.DEFINE_integer("steps", 600, "Training steps of every recipe.")
flags.DEFINE_integer("parallel", 2, "Runs at a time, one CPU thread each.")
flags.DEFINE_string("out", "runs/l3c-recipes", "One workdir per recipe, and the tables.")
flags.DEFINE_integer("val_limit", 0, "Use the first N images of each validation set (0: all).")
flags.DEFINE_string("worker", None, "Internal: train this one recipe in this process.")

_BSDS = "../shared/data/train/bsds500"
_CAMVID = "../shared/data/camvid"
_DATA = {  # training data choices: data sections of experiments/configs/presets.DATASETS' kind
    "bsds": dict(source="folder", path=_BSDS, train_splits="train+test"),
    "camvid": dict(source="paired_folders", path=_CAMVID),
    "mix": dict(presets.DATASETS["bsds500+camvid"]),
}
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
}


def recipe_config(name: str, steps: int):
  from experiments.configs import l3c
  if name not in RECIPES:
    raise ValueError(f"unknown recipe {name!r}; use one of {', '.join(RECIPES)}")
  config = l3c.get_config("cpu")
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
    section[leaf] = value
  config.train.steps = steps
  config.train.eval_every = steps
  config.train.checkpoint_every = max(100, steps // 4)
  return config


def _train_one(name: str):
  from compzoo.train.loop import train_and_evaluate
  train_and_evaluate(recipe_config(name, FLAGS.steps), Path(FLAGS.out) / name, progress=False)


def _launch(name: str) -> subprocess.Popen:
  env = dict(os.environ, XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
  log = open(Path(FLAGS.out) / f"{name}.log", "w")
  return subprocess.Popen([sys.executable, "-m", "experiments.l3c_recipes", f"--worker={name}",
                           f"--steps={FLAGS.steps}", f"--out={FLAGS.out}"], env=env, stdout=log, stderr=log)


def _compare():
  from compzoo import exports
  from experiments.l3c_validation import validation_bpsp, validation_images
  names = FLAGS.recipes or list(RECIPES)
  unknown = [name for name in names if name not in RECIPES]
  if unknown:
    raise app.UsageError(f"unknown recipes {', '.join(unknown)}; use some of {', '.join(RECIPES)}")
  out = Path(FLAGS.out)
  out.mkdir(parents=True, exist_ok=True)
  todo = [name for name in names if not (out / name / "export").is_dir()]
  running, started = {}, {}
  while todo or running:
    while todo and len(running) < FLAGS.parallel:
      name = todo.pop(0)
      running[name], started[name] = _launch(name), time.time()
    time.sleep(5)
    for name, process in list(running.items()):
      if process.poll() is not None:
        del running[name]
        if process.returncode:
          raise RuntimeError(f"recipe {name} failed; see {out / f'{name}.log'}")
        (out / name / "minutes.txt").write_text(f"{(time.time() - started[name]) / 60:.1f}\n")
  sets = validation_images(FLAGS.val_limit)
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
