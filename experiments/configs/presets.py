"""What every method's config shares: where the data sets are, the size variants' schedules, and how a
variant name is read. A method's config file then only says what is its own (model, objective, sizes).

Sizes: ``tiny`` (a smoke test, a minute or two on 2 CPU cores), ``cpu`` (what the shipped checkpoints were
trained with, sized for 2 CPU cores), ``gpu`` (the paper's sizes, for an accelerator; train it in slices
with ``--config.train.max_seconds=540``: each run resumes where the last stopped). Every variant of every
config takes finite steps on the CPU in tests/test_configs.py, so none can ship broken.
"""

from __future__ import annotations

import itertools

import ml_collections

from compzoo.errors import UsageError

SIZES = ("tiny", "cpu", "gpu")
DATA_DIR = ".data/tfds"
# The shared data sets, relative to the repository root where experiments run (../shared sits beside it):
# the one place their folders are spelt.
SHARED_DATA = "../shared/data"
BSDS500, CAMVID, CIFAR10, MNIST, KODAK, LOSSLESS_PHOTOS = (f"{SHARED_DATA}/{name}" for name in (
    "train/bsds500", "camvid", "cifar10", "mnist", "kodak", "lossless-photos"))
DATASETS = {
    "bsds500": dict(source="folder", path=BSDS500),
    "camvid": dict(source="paired_folders", path=CAMVID, eval_split="val"),
    "cifar10": dict(source="class_zips", path=CIFAR10, eval_split="test"),
    "mnist": dict(source="mnist_idx", path=MNIST, eval_split="test"),
    "embedded": dict(source="embedded"),
    # 61 photographs with no measurable JPEG history (47 train, 14 val): what lossless models learn from (#32).
    "lossless-photos": dict(source="folder", path=LOSSLESS_PHOTOS, eval_split="val"),
    # BSDS500's train and test photos at native resolution and CamVid's train frames, one record each (issue #17).
    "bsds500+camvid": dict(source="mixture", parts=[
        dict(source="folder", path=BSDS500, train_splits="train+test", data_dir=DATA_DIR),
        dict(source="paired_folders", path=CAMVID, data_dir=DATA_DIR)]),
}
_SCHEDULES = {  # steps are set per method; these are the logging and checkpoint cadences
    "tiny": dict(log_every=10, eval_every=50, checkpoint_every=50),
    "cpu": dict(log_every=50, eval_every=500, checkpoint_every=500),
    "gpu": dict(log_every=100, eval_every=2000, checkpoint_every=5000),
}


def data(name: str, crop: int, batch_size: int, **options) -> dict:
  """The data section for a named data set (``DATASETS``), cached under ``DATA_DIR``."""
  section = dict(DATASETS[name], crop=crop, batch_size=batch_size, **options)
  if section["source"] != "embedded":
    section.setdefault("data_dir", DATA_DIR)
  return section


def train(size: str, steps: int, **options) -> dict:
  """The train section: ``steps`` and the size's cadences; ``init_from`` (warm start), ``freeze`` (path
  prefixes), ``max_seconds`` (wall-clock budget, 0: none), ``keep_checkpoints`` (how many a run keeps: more
  for a learning curve over them), ``log_reads`` (WORKDIR/reads/: which records each process read),
  ``compute_dtype`` ('bfloat16': mixed precision, compzoo.train.loop.set_compute_dtype) and
  ``export_on_stop`` (export when ``max_seconds`` stops the run too) are there to be overridden;
  ``checkpoint_every=0`` saves none."""
  return {**dict(steps=steps, seed=0, eval_images=4, init_from="", freeze="", max_seconds=0, keep_checkpoints=2,
                 log_reads=False, compute_dtype="", export_on_stop=False),
          **_SCHEDULES[size], **options}


def optimizer(learning_rate: float, schedule: str = "cosine", warmup: int = 100, clip: float = 1.0, **options) -> dict:
  return dict(name="adam", learning_rate=learning_rate, schedule=schedule, warmup=warmup, clip=clip, **options)


def config(model: dict, objective: dict, data: dict, optimizer: dict, train: dict) -> ml_collections.ConfigDict:
  result = ml_collections.ConfigDict()
  result.model, result.objective, result.data, result.optimizer, result.train = model, objective, data, optimizer, train
  return result


def parse_variant(variant: str, *choices: tuple[str, ...]) -> tuple[str, ...]:
  """'cpu-mid-factorized' against choices (SIZES, ('low', 'mid', 'high'), ('', 'factorized')) -> its parts.
  A choice may be '' (omitted from the name) or hold dashes itself ('rgb-shared')."""
  for combination in itertools.product(*choices):
    if _name(combination) == variant:
      return combination
  raise UsageError(f"unknown variant {variant!r}; use one of {', '.join(all_variants(*choices))}")


def all_variants(*choices: tuple[str, ...]) -> list[str]:
  return [_name(combination) for combination in itertools.product(*choices)]


def _name(combination) -> str:
  return "-".join(part for part in combination if part)
