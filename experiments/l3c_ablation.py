"""The L3C paper's ablation on artefact-free photographs (issue #32): learned auxiliary representations (l3c)
against the fixed RGB pyramid (l3c-rgb) and the RGB pyramid with one predictor for every scale
(l3c-rgb-shared), each trained from scratch at an equal budget, with two seeds for the spread:

    python -m experiments.l3c_ablation --steps=300 --seeds=0,1 --variants=cpu,cpu-rgb --out=runs/l3c-ablation

Every run is the ``photos-scratch`` recipe of experiments/l3c_recipes.py (lossless-photos train, 3e-3, 8 crops
of 64) on the variant's architecture, ``--parallel`` runs at a time on one CPU thread each (a finished run is
not trained again). Each export's own bits per sub-pixel are then scored on whole images of lossless-photos val
and Kodak: nothing is chosen here, so a reported set may be scored. Writes OUT/ablation.md and OUT/ablation.json.
"""

import functools
import json
from pathlib import Path

from absl import app, flags, logging

from experiments import launch
from experiments.configs import presets
from experiments.l3c_recipes import launch_worker, run_pool  # also define --steps, --parallel, --out, --val_limit

FLAGS = flags.FLAGS
flags.DEFINE_list("variants", ["cpu", "cpu-rgb", "cpu-rgb-shared"], "l3c.py variants to compare.")
flags.DEFINE_list("seeds", ["0", "1"], "Training seeds: each variant runs once per seed.")
flags.DEFINE_string("kodak", presets.KODAK, "The second scoring set.")

RECIPE = "photos-scratch"


def _train_all(runs: list[tuple[str, int]], out: Path) -> None:
  jobs = {(variant, seed): (functools.partial(launch_worker, RECIPE, _folder(out, variant, seed), FLAGS.steps,
                                              seed=seed, variant=variant),
                            _folder(out, variant, seed) / f"{RECIPE}.log")
          for variant, seed in runs if not (_folder(out, variant, seed) / RECIPE / "export").is_dir()}
  run_pool(jobs, FLAGS.parallel)


def _folder(out: Path, variant: str, seed: int) -> Path:
  return out / f"{variant}-s{seed}"


def _sets() -> dict[str, list]:
  from compzoo import data
  from experiments.l3c_validation import cropped_to_8, validation_images
  sets = validation_images(FLAGS.val_limit, ["lossless-photos-val"])
  sets["kodak"] = cropped_to_8(data.image_set(FLAGS.kodak, FLAGS.val_limit).values())
  return sets


def _table(rows: list[dict], sets) -> str:
  header = ["variant"] + [f"{name} seed {seed}" for name in sets for seed in FLAGS.seeds] + \
           [f"{name} mean ± half-range" for name in sets]
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  for variant in FLAGS.variants:
    mine = [row for row in rows if row["variant"] == variant]
    cells = [variant] + [f"{row[name]:.4f}" for name in sets for row in mine]
    for name in sets:
      values = [row[name] for row in mine]
      cells.append(f"{sum(values) / len(values):.4f} ± {(max(values) - min(values)) / 2:.4f}")
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines)


def _run():
  from compzoo import exports
  from experiments.l3c_validation import validation_bpsp
  out = Path(FLAGS.out)
  runs = [(variant, int(seed)) for variant in FLAGS.variants for seed in FLAGS.seeds]
  _train_all(runs, out)
  sets = _sets()
  rows = []
  for variant, seed in runs:
    model = exports.load_model(_folder(out, variant, seed) / RECIPE / "export")
    rows.append(dict(variant=variant, seed=seed, **validation_bpsp(model, sets)))
    print(rows[-1], flush=True)
  (out / "ablation.json").write_text(json.dumps(rows, indent=1) + "\n")
  table = _table(rows, sets)
  (out / "ablation.md").write_text(table + "\n")
  print(table)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  logging.set_verbosity(logging.WARNING)
  launch.run(_run)


if __name__ == "__main__":
  app.run(main)
