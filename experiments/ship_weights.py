"""Copies trained exports into the package in the layout the zoo entries read, and a feature network into
compzoo/weights/features/NAME:

    python -m experiments.ship_weights --family=dplc-mnist --runs=runs/dplc --features=runs/features/mnist
    python -m experiments.ship_weights --family=gc --runs=runs/gc --features=runs/features/camvid
    python -m experiments.ship_weights --family=jpeg-refine --runs=runs/refine

dplc-DATASET: RUNS/DATASET-generator/export -> generator/ (the WGAN-GP generator, rate 0 of
dplc-DATASET-wgan) and RUNS/DATASET-OBJECTIVE-rRATE/export -> OBJECTIVE/rRATE/.
gc: RUNS/POINT-cC/export -> POINT-cC/ for gc's and gc-mse's channels and sc's (POINT: gc, mse, sc).
jpeg-refine: RUNS/RULE/export -> RULE/ for each credit rule.
The run names are those `make dplc-mnist`, `make gc` and `make refine` give; a missing export is an error, so a
half-trained sweep is never shipped.
"""

import shutil
from pathlib import Path

from absl import app, flags

from compzoo import exports
from compzoo.bench.distribution import FEATURES_ROOT
from compzoo.codecs.learned import (DPLC_OBJECTIVES, DPLC_RATES, GC_CHANNELS, GC_POINTS, REFINE_RULES, SC_CHANNELS,
                                    WEIGHTS_ROOT)

FAMILIES = [f"dplc-{dataset}" for dataset in DPLC_RATES] + ["gc", "jpeg-refine"]
_FAMILY = flags.DEFINE_enum("family", "dplc-mnist", FAMILIES, "the weights folder to fill")
_RUNS = flags.DEFINE_string("runs", "runs/dplc", "folder of the training workdirs")
_FEATURES = flags.DEFINE_string("features", "", "the feature network's workdir (empty: leave it)")
_FEATURE_NAMES = {"dplc-mnist": "mnist", "dplc-cifar10": "cifar10", "gc": "camvid"}


def layout(family: str) -> list[tuple[str, str]]:
  """(run name, folder under compzoo/weights/FAMILY) for every shipped point."""
  if family == "jpeg-refine":
    return [(rule, rule) for rule in REFINE_RULES]
  if family == "gc":
    points = [f"{GC_POINTS[entry]}-c{c}" for entry, channels in GC_CHANNELS.items() for c in channels]
    return [(point, point) for point in points + [f"sc-c{SC_CHANNELS}"]]
  dataset = family.removeprefix("dplc-")
  return [(f"{dataset}-generator", "generator")] + [
      (f"{dataset}-{objective}-r{rate}", f"{objective}/r{rate}")
      for objective in DPLC_OBJECTIVES for rate in DPLC_RATES[dataset] if not (objective == "wgan" and rate == 0)]


def _copy(source: Path, target: Path) -> None:
  if target.exists():
    shutil.rmtree(target)
  target.parent.mkdir(parents=True, exist_ok=True)
  shutil.copytree(source, target)
  print(f"{source} -> {target}")


def main(argv):
  del argv
  family, runs = _FAMILY.value, Path(_RUNS.value)
  copies = [(runs / run / "export", WEIGHTS_ROOT / family / point) for run, point in layout(family)]
  if _FEATURES.value:
    copies.append((Path(_FEATURES.value) / "export", FEATURES_ROOT / _FEATURE_NAMES[family]))
  missing = [str(source) for source, _ in copies if not exports.is_export(source)]
  if missing:  # all present before anything is replaced
    raise app.UsageError(f"no export at {', '.join(missing)}: train them first")
  for source, target in copies:
    _copy(source, target)


if __name__ == "__main__":
  app.run(main)
