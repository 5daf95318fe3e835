"""What a lent GPU proves besides training (experiments/gpu_run.py runs these in a process of their own,
beside its training queue, and reads the JSON they print):

* ``steps``: every family's paper-size (``gpu``) config takes sharded steps (``jit`` with the state
  replicated and the batch split over a ``NamedSharding``) on its real batch and crop, with finite losses;
  the steps after the first are timed (images/s, against ``experiments.bench_train`` on the CPU).
* ``cross``: a file written by every learned codec on this backend decodes in a CPU process, and in another
  process on this backend (the same-backend guarantee as users meet it), and a file written in a CPU
  process decodes here: exactly, or with the codec's stated refusal (experiments/cross_process_decode.py).
* ``times``: each learned codec's compress and decompress time on one Kodak image (the second run: the
  first compiles).

Where the bundle left a codec's shipped weights behind (experiments/gpu_bundle.py), it is checked with a
stand-in: its shipped config.json with initialised weights, written into a copy of the weights tree that
``COMPZOO_WEIGHTS`` points to. Coding runs the same code on any weights; the report says which were which.

    python -m experiments.gpu_checks --check=steps --size=tiny --families=cpm,gc
    python -m experiments.gpu_checks --check=cross --codecs=cpm-mid,l3c
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from compzoo.errors import UsageError

# One paper-size variant per family: the one whose step runs the most of the family's networks.
FAMILY_VARIANTS = {"bmshj2018_factorized": "gpu", "cpm": "gpu-mid", "dplc": "gpu-cifar10-wpp",
                   "feature_net": "gpu-camvid", "gc": "gpu-sc", "l3c": "gpu", "latent_tasks": "gpu-camvid-joint-mid",
                   "pixelcnn": "gpu", "refine": "gpu-sab"}
# Per-pixel decoders run one network pass per pixel: timed on a central crop, not the whole Kodak image.
CROPPED_FOR_TIMES = {"pixelcnn": 64}


def variant(family: str, size: str) -> str:
  return size + FAMILY_VARIANTS[family][len("gpu"):]


def sharded_steps(family: str, size: str = "gpu", steps: int = 3) -> dict:
  """A few steps of the family's config at ``size`` on all devices; -> losses, compile and step times."""
  import jax
  import numpy as np
  import skimage.data

  from compzoo.data import pipeline
  from compzoo.train import mesh as mesh_lib
  from compzoo.train.loop import compile_step, new_train_state, place
  name = variant(family, size)
  config = importlib.import_module(f"experiments.configs.{family}").get_config(name)
  mesh = mesh_lib.make_mesh()
  rows = config.data.batch_size
  mesh_lib.check_batch_size(rows, mesh)
  batch = mesh_lib.shard_batch(pipeline.example_batch(config, skimage.data.astronaut(), rows, config.data.crop), mesh)
  started = time.perf_counter()
  objective, train_state = new_train_state(config)
  graphdef, state = place(train_state, mesh)
  step = compile_step(objective, graphdef, mesh)
  built = time.perf_counter() - started
  losses, times = [], []
  for i in range(steps):
    start = time.perf_counter()
    state, metrics = step(state, batch, jax.random.PRNGKey(i))
    losses.append(float(jax.device_get(metrics["loss"])))
    times.append(time.perf_counter() - start)
  timed = sum(times[1:]) or float("nan")
  return {"family": family, "config": f"experiments/configs/{family}.py:{name}", "devices": jax.device_count(),
          "sharding": str(batch["image"].sharding.spec), "batch": rows, "crop": config.data.crop,
          "losses": losses, "finite": bool(np.all(np.isfinite(losses))),
          "build_s": round(built, 2), "first_step_s": round(times[0], 2),
          "images_per_s": round(rows * (steps - 1) / timed, 1) if steps > 1 else None}


def entry_folder(name: str) -> Path:
  """The weights folder (relative to the weights tree) that zoo entry ``name`` loads, found by building it
  with loading stubbed out: no weights are read, so this works where they were left behind."""
  from compzoo import zoo
  from compzoo.codecs import learned

  class Found(Exception):
    pass

  def record(path, *args, **kwargs):
    raise Found(path)

  original = learned.LearnedCodec.from_path
  learned.LearnedCodec.from_path = record
  try:
    zoo.make_codec(name)
  except Found as found:
    return Path(found.args[0]).relative_to(learned.WEIGHTS_ROOT)
  finally:
    learned.LearnedCodec.from_path = original
  raise UsageError(f"{name} loads no weights folder")


def stand_in_tree(names, root: Path) -> dict[str, str]:
  """A weights tree at ``root``: the shipped files linked, and for each entry of ``names`` whose shipped
  export does not load (left behind), a stand-in export of its config with initialised weights. -> {entry:
  'shipped' | 'stand-in'}."""
  from compzoo import exports, models
  from compzoo.codecs.learned import SHIPPED_WEIGHTS
  shutil.copytree(SHIPPED_WEIGHTS, root, copy_function=os.symlink, dirs_exist_ok=True)
  kinds = {}
  for name in names:
    folder = entry_folder(name)
    try:
      exports.read(SHIPPED_WEIGHTS / folder)
      kinds[name] = "shipped"
    except UsageError:
      config = json.loads((SHIPPED_WEIGHTS / folder / exports.CONFIG_FILE).read_text())
      config.pop("shared_params", None)  # a stand-in holds every part itself
      model = models.build(config["model"], seed=0)
      models.strip_training_parts(model)
      target = root / folder
      shutil.rmtree(target)
      exports.write(target, config, model)
      kinds[name] = "stand-in"
  return kinds


def cross_backend(names, workdir: Path) -> dict:
  """Files written here decoded on the CPU and in another process here; files written on the CPU decoded
  here. -> {direction: {codec: row}}, rows as experiments.cross_process_decode.check gives them."""
  import numpy as np
  import skimage.data

  from experiments.cross_process_decode import check
  image = np.ascontiguousarray(skimage.data.astronaut()[96:160, 160:256])
  result = {"here_to_cpu": check(names, image, workdir / "here-cpu", xla_flags="", platforms="cpu"),
            "here_to_here": check(names, image, workdir / "here-here", xla_flags="", platforms=None)}
  # Files written in a CPU process, decoded on this machine's default backend: the same check, run there.
  command = [sys.executable, "-m", "experiments.gpu_checks", "--check=cross_from_cpu", f"--codecs={','.join(names)}",
             f"--workdir={workdir / 'cpu-here'}"]
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
  if done.returncode:
    result["cpu_to_here"] = {"error": done.stderr.strip().splitlines()[-1:] or ["failed"]}
  else:
    rows = json.loads(done.stdout.strip().splitlines()[-1])
    rows.pop("backend", None)  # the CPU process's own
    result["cpu_to_here"] = rows
  for direction, rows in result.items():
    for row in rows.values() if "error" not in rows else ():
      row["as_stated"] = as_stated(row, across_backends=direction != "here_to_here")
  return result


def as_stated(row: dict, across_backends: bool) -> bool:
  """Did the codec keep its word? Exact (or a lossy codec's one-level rounding) always does; a refusal only
  where the codec says files decode on the same backend only, and the file crossed backends."""
  if row["outcome"] in ("exact", "one level"):
    return True
  return row["outcome"] == "refused" and across_backends and row["guarantee"] == "same-backend"


def codec_times(names, image_path: Path) -> dict:
  """-> {codec: {'compress_s', 'decompress_s', 'bpp', 'pixels'}} on one image (the second of two runs)."""
  from compzoo import zoo
  from compzoo.codecs.base import fit_image, sample_side
  from compzoo.data.images import central_crop, load_image
  image = load_image(image_path)
  rows = {}
  for name in names:
    codec = zoo.make_codec(name)
    crop = CROPPED_FOR_TIMES.get(name)
    fitted = fit_image(central_crop(image, crop) if crop else image, codec)
    for _ in range(2):
      start = time.perf_counter()
      data = codec.compress(fitted, **sample_side(codec, fitted))
      middle = time.perf_counter()
      codec.decompress(data)
      end = time.perf_counter()
    pixels = fitted.shape[0] * fitted.shape[1]
    rows[name] = {"compress_s": round(middle - start, 3), "decompress_s": round(end - middle, 3),
                  "bpp": round(8 * len(data) / pixels, 4), "pixels": pixels}
  return rows


def main(argv):
  del argv
  from absl import flags
  from experiments import launch
  f = flags.FLAGS
  result = {}

  def report(**parts):
    """Prints the results so far, one JSON line each time a part ends: the last line a stopped check left
    is what it finished (experiments/gpu_run.py reads it)."""
    result.update(parts)
    print(json.dumps(result), flush=True)

  def work():
    import jax
    result["backend"] = jax.default_backend()
    names = f.codecs or learned_names()
    if f.check == "steps":
      for family in f.families or FAMILY_VARIANTS:
        report(steps=result.get("steps", []) + [{"family": family, **_reported(sharded_steps, family, f.size, f.steps)}])
    elif f.check == "cross_from_cpu":
      import numpy as np
      import skimage.data
      from experiments.cross_process_decode import check
      image = np.ascontiguousarray(skimage.data.astronaut()[96:160, 160:256])
      report(**check(names, image, Path(f.workdir), xla_flags="", platforms=None))
    else:
      with _weights_tree(names) as kinds:
        report(weights=kinds)
        if f.check in ("cross", "all"):
          with tempfile.TemporaryDirectory() as workdir:
            report(cross=_reported(cross_backend, names, Path(workdir)))
        if f.check in ("times", "all") and f.image:
          report(times=_reported(codec_times, names, Path(f.image)))

  launch.run(work)


def _reported(check, *args) -> dict:
  """A check's result, or its error with the traceback's end: one check's failure leaves the others' results."""
  try:
    return check(*args)
  except Exception as e:
    import traceback
    return {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc().splitlines()[-8:]}


def learned_names() -> list[str]:
  from experiments.cross_process_decode import learned_entries
  return learned_entries(one_per_group=True)


@contextlib.contextmanager
def _weights_tree(names):
  """Codecs of this process and its children read a stand-in tree (``stand_in_tree``) while inside."""
  from compzoo.codecs import learned
  with tempfile.TemporaryDirectory() as root:
    kinds = stand_in_tree(names, Path(root))
    learned.WEIGHTS_ROOT, os.environ["COMPZOO_WEIGHTS"] = Path(root), root  # children read the variable
    try:
      yield kinds
    finally:
      learned.WEIGHTS_ROOT = learned.SHIPPED_WEIGHTS
      os.environ.pop("COMPZOO_WEIGHTS", None)


if __name__ == "__main__":
  os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # processes beside it share the GPU
  from absl import app, flags
  flags.DEFINE_enum("check", "all", ["steps", "cross", "times", "all", "cross_from_cpu"], "what to check")
  flags.DEFINE_enum("size", "gpu", ["gpu", "cpu", "tiny"], "config size of the sharded steps")
  flags.DEFINE_integer("steps", 3, "sharded steps per family (the first compiles)")
  flags.DEFINE_list("families", None, f"config families (default: {', '.join(FAMILY_VARIANTS)})")
  flags.DEFINE_list("codecs", None, "learned zoo entries (default: one of each family)")
  flags.DEFINE_string("image", None, "the image codecs are timed on (a Kodak photo)")
  flags.DEFINE_string("workdir", None, "cross_from_cpu: where the CPU process writes its files")
  app.run(main)
