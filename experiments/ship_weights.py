"""Copies trained exports into the package in the layout the zoo entries read, and a feature network into
compzoo/weights/features/NAME:

    python -m experiments.ship_weights --family=dplc-mnist --runs=runs/dplc --features=runs/features/mnist
    python -m experiments.ship_weights --family=gc --runs=runs/gc --features=runs/features/camvid
    python -m experiments.ship_weights --family=jpeg-refine --runs=runs/refine
    python -m experiments.ship_weights --family=latent-tasks --runs=runs/lt
    python -m experiments.ship_weights --family=l3c --runs=runs/l3c-photos \
        --superseded_note="the l3c weights shipped from issue #17 to #32"

Each folder's points and run names come from its record in compzoo/codecs/catalogue.py: RUNS/RUN/export ->
FAMILY/POINT/, where RUN is the point with '/' as '-' (and, for dplc-DATASET, 'DATASET-' in front), e.g.
RUNS/mnist-wae-r8/export -> dplc-mnist/wae/r8/, RUNS/gc-c4/export -> gc/gc-c4/, RUNS/q1/export ->
bmshj2018-factorized/q1/; a single-export family (l3c, ...) takes RUNS/export (RUNS is the run's workdir).
Weights that replace others (another weights id) list the old id in the new folder's superseded.json, described
by --superseded_note, with the ids the old folder listed: files of every earlier weights are refused by name.
latent-tasks' heads (TASK/PATH[-R]/) get a task.json naming the codec whose files the head reads and its
weights id; heads on a frozen codec ship without it (config.json's shared_params points at codec/R/, after
checking that their copy is bit for bit the same).
The run names are those `make dplc-mnist`, `make gc` and `make refine` give; a missing export is an error, so a
half-trained sweep is never shipped.
"""

import json
import shutil
from pathlib import Path

from absl import app, flags

from flax import serialization

from compzoo import exports
from compzoo.bench.distribution import FEATURES_ROOT
from compzoo.codecs import catalogue
from compzoo.codecs.catalogue import LATENT_TASKS
from compzoo.codecs.learned import WEIGHTS_ROOT
from compzoo.inference import META_FILE

FAMILIES = [record.folder for record in catalogue.FAMILIES]  # the weights folders, from the catalogue
_FAMILY = flags.DEFINE_enum("family", "dplc-mnist", FAMILIES, "the weights folder to fill")
_RUNS = flags.DEFINE_string("runs", "runs/dplc", "folder of the training workdirs")
_FEATURES = flags.DEFINE_string("features", "", "the feature network's workdir (empty: leave it)")
_NOTE = flags.DEFINE_string("superseded_note", "", "what the weights being replaced were, for their files' refusal "
                            "(required when any shipped weights change)")
_FEATURE_NAMES = {"dplc-mnist": "mnist", "dplc-cifar10": "cifar10", "gc": "camvid"}


def layout(family: str) -> list[tuple[str, str]]:
  """(run name, folder under compzoo/weights/FAMILY) for every shipped point (compzoo/codecs/catalogue.py)."""
  return catalogue.family(family).runs()


def _superseded(source: Path, target: Path) -> dict[str, str]:
  """What the new folder's superseded.json must hold: the replaced weights' id and the ids they listed."""
  if not exports.is_export(target):
    return {}
  old, new = exports.read(target), exports.read(source)
  if old.weights_id == new.weights_id:
    return {key.hex(): note for key, note in old.superseded.items()}
  if not _NOTE.value:
    raise app.UsageError(f"{target} holds other weights: say what they were with --superseded_note")
  earlier = {key.hex(): note for key, note in old.superseded.items()}
  earlier.update({key.hex(): f"{_NOTE.value}, coded as compzoo 0.1 did" for key in old.retired_ids})
  return {**earlier, old.weights_id.hex(): _NOTE.value}


def _copy(source: Path, target: Path, superseded: dict[str, str]) -> None:
  if target.exists():
    shutil.rmtree(target)
  target.parent.mkdir(parents=True, exist_ok=True)
  shutil.copytree(source, target)
  if superseded:
    (target / exports.SUPERSEDED_FILE).write_text(json.dumps(superseded, indent=1) + "\n")
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
  superseded = [_superseded(source, target) for source, target in copies]  # every check before any copy
  for (source, target), ids in zip(copies, superseded):
    _copy(source, target, ids)
  if family == "latent-tasks":
    for _, target in copies:
      if target.parent.name in LATENT_TASKS:
        _describe_head(target)


def _describe_head(folder: Path) -> None:
  """Writes a shipped task head's task.json; a head on a frozen codec drops its copy of the codec's
  parameters for a pointer to the shipped codec (after checking they are the same bits)."""
  task, (path, _, rate) = folder.parent.name, folder.name.partition("-")
  meta = {"task": task, "path": "latent" if path == "joint" else path, "codec": "", "codec_weights_id": ""}
  if path in ("rgb", "latent"):
    codec = WEIGHTS_ROOT / "latent-tasks" / "codec" / rate
    params = serialization.msgpack_restore((folder / exports.PARAMS_FILE).read_bytes())
    if serialization.msgpack_serialize(params.pop("codec")) != (codec / exports.PARAMS_FILE).read_bytes():
      raise app.UsageError(f"{folder}: its codec is not the shipped {codec} (was it frozen?)")
    (folder / exports.PARAMS_FILE).write_bytes(serialization.msgpack_serialize(params))
    (folder / exports.TABLES_FILE).unlink(missing_ok=True)
    config = json.loads((folder / exports.CONFIG_FILE).read_text())
    config["shared_params"] = {"codec": "../../codec/" + rate}
    (folder / exports.CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    meta.update(codec=f"torfason-ae:rate={rate}", codec_weights_id=exports.read(codec).weights_id.hex())
  elif path == "joint":
    meta.update(codec=f"torfason-ae-joint-{task}:rate={rate}", codec_weights_id=exports.read(folder).weights_id.hex())
  (folder / META_FILE).write_text(json.dumps(meta, indent=1) + "\n")


if __name__ == "__main__":
  app.run(main)
