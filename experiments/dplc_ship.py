"""Copies trained DPLC exports into the package (compzoo/weights/dplc-DATASET/) in the layout the zoo
entries read: ``generator/`` (the WGAN-GP generator, rate 0 of dplc-DATASET-wgan) and ``OBJECTIVE/rRATE/``;
and the feature network into compzoo/weights/features/DATASET.

    python -m experiments.dplc_ship --dataset=mnist --runs=runs/dplc --features=runs/features/mnist

Runs are found as RUNS/DATASET-OBJECTIVE-rRATE/export (the names `make dplc-mnist` gives them) and
RUNS/DATASET-generator/export; a missing one is an error, so a half-trained sweep is never shipped.
"""

import shutil
from pathlib import Path

from absl import app, flags

from compzoo import exports
from compzoo.bench.distribution import FEATURES_ROOT
from compzoo.codecs.learned import DPLC_OBJECTIVES, DPLC_RATES, WEIGHTS_ROOT

_DATASET = flags.DEFINE_enum("dataset", "mnist", ["mnist", "cifar10"], "data set")
_RUNS = flags.DEFINE_string("runs", "runs/dplc", "folder of the training workdirs")
_FEATURES = flags.DEFINE_string("features", "", "the feature network's workdir (empty: leave it)")


def _copy(source: Path, target: Path) -> None:
  if not exports.is_export(source):
    raise app.UsageError(f"no export at {source}: train it first")
  if target.exists():
    shutil.rmtree(target)
  target.parent.mkdir(parents=True, exist_ok=True)
  shutil.copytree(source, target)
  print(f"{source} -> {target}")


def main(argv):
  del argv
  dataset, runs = _DATASET.value, Path(_RUNS.value)
  if dataset not in DPLC_RATES:
    raise app.UsageError(f"no dplc-{dataset} rates are declared (compzoo/codecs/learned.py: DPLC_RATES)")
  root = WEIGHTS_ROOT / f"dplc-{dataset}"
  _copy(runs / f"{dataset}-generator" / "export", root / "generator")
  for objective in DPLC_OBJECTIVES:
    for rate in DPLC_RATES[dataset]:
      if objective == "wgan" and rate == 0:
        continue
      _copy(runs / f"{dataset}-{objective}-r{rate}" / "export", root / objective / f"r{rate}")
  if _FEATURES.value:
    _copy(Path(_FEATURES.value) / "export", FEATURES_ROOT / dataset)


if __name__ == "__main__":
  app.run(main)
