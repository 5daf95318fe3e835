"""One prepared command for a lent GPU (``make gpu-run``; WORKSPACE.md gives the whole call): in about 9
minutes it proves that the zoo runs there and spends the rest training the shipped models furthest behind.

1. Prints the devices, the versions it runs with and the bundle it found (``make gpu-bundle``).
2. Starts the checks of experiments/gpu_checks.py in processes of their own: every family's paper-size
   config takes sharded steps; files cross between this backend and the CPU; codecs are timed on Kodak.
3. Meanwhile trains ``QUEUE`` in this process: each slice continues a shipped model from its weights on
   the bundle's data for its share of the time left (``train.max_seconds``), then exports it.
4. Writes under ``--out`` (the device's $OUT): ``report.json`` (everything above), ``metrics.tar`` (each
   slice's metrics.csv, eval.csv and warm-start report) and ``exports-N.tar`` (the exports, packed under 16
   MiB each): at most 8 files, as the device returns them.

The queue's order is the gap each model has to its anchor (docs/: one page per method): l3c codes Kodak at 4.33 bpsp against
JPEG XL's 2.90 (+49%); gc's pictures are dark and checkerboarded where WebP at its lowest is clean; cpm is
+17% BD-rate against JPEG 2000. l3c and cpm continue on artefact-free photographs (lossless-photos train,
what lossless models learn from), gc on CamVid's train frames. Nothing here chooses what ships: exports come
back, are benched on held-out validation sets on the CPU, and ship only if better there.

    python -m experiments.gpu_run --bundle=.gpu-bundle --out=$OUT         # on the GPU (make gpu-run)
    python -m experiments.gpu_run --dry_run                               # here (make gpu-dry-run)
    python -m experiments.gpu_run --size=tiny --budget_s=60 --out=/tmp/o  # the whole call, tiny (tests)
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

BUNDLE = Path(".gpu-bundle")
MAX_FILE_BYTES = 15 * 2**20  # the device returns files of at most 16 MiB, 8 files in all
MAX_EXPORT_TARS = 5  # + report.json, metrics.tar and the make recipe's run.log


@dataclasses.dataclass(frozen=True)
class Slice:
  """One model of the queue: ``config`` continued from shipped ``weights`` on the bundle's ``data`` for
  ``share`` of the training time; ``overrides`` are config fields (a continuation's learning rate)."""
  name: str
  config: str  # experiments/configs/NAME.py:variant, the variant that trained the shipped weights
  weights: str  # compzoo/weights/<this>: the warm start
  data: str  # BUNDLE/data/<this>
  share: float
  overrides: tuple = ()


# A continuation starts with a warm-up at a constant rate: its optimizer states (and gc's discriminator,
# which exports do not ship) start from nothing, and a cut by max_seconds leaves no cosine half-done.
_CONTINUE = (("optimizer.schedule", "constant"), ("optimizer.warmup", 200))
QUEUE = (
    Slice("l3c", "experiments/configs/l3c.py:cpu", "l3c", "lossless-photos", 0.35,
          _CONTINUE + (("optimizer.learning_rate", 5e-4), ("data.batch_size", 32))),
    Slice("gc-c4", "experiments/configs/gc.py:cpu-gc", "gc/gc-c4", "camvid", 0.35,
          _CONTINUE + (("data.batch_size", 8), ("train.compute_dtype", "bfloat16"))),
    Slice("cpm-mid", "experiments/configs/cpm.py:cpu-mid", "cpm-mid", "lossless-photos", 0.3,
          _CONTINUE + (("optimizer.learning_rate", 3e-4), ("data.batch_size", 16))),
)
SLICE_OVERHEAD_S = 20  # after max_seconds: the last evaluation and the export
KODAK_IMAGE = "kodak/kodim23.png"  # BUNDLE/data/<this>: the codecs' times


def slice_config(item: Slice, bundle: Path, size: str = "full"):
  """The config a slice trains: its variant (``tiny`` for tests), the bundle's data, no step limit but time."""
  import importlib.util
  path, variant = item.config.split(":")
  spec = importlib.util.spec_from_file_location("config_module", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  full = size == "full"
  config = module.get_config(variant if full else variant.replace("cpu", "tiny", 1))
  crop, batch = config.data.crop, config.data.batch_size
  for field, value in item.overrides:
    section, key = field.split(".")
    if full or section != "data":  # tiny configs keep their tiny batches
      config[section][key] = value
  config.data = dict(source="files", path=str(bundle / "data" / item.data), crop=crop,
                     batch_size=config.data.batch_size if full else batch, flip=True,
                     **({"darken": config.data.darken} if config.data.get("darken") else {}))
  config.train.update(steps=10**7, log_every=100 if full else 5, eval_every=2000 if full else 20,
                      checkpoint_every=0, export_on_stop=True)  # no orbax round trip between training and export
  return config


def versions() -> dict:
  import importlib.metadata
  found = {"python": sys.version.split()[0]}
  for name in ("jax", "jaxlib", "jax-cuda13-plugin", "flax", "optax", "orbax-checkpoint", "numpy", "ml_collections",
               "constriction", "imagecodecs", "grain", "array_record", "tensorboardX", "pillow", "scikit-image"):
    try:
      found[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      pass
  return found


def read_manifest(bundle: Path) -> dict:
  from compzoo.errors import UsageError
  try:
    return json.loads((bundle / "manifest.json").read_text())
  except (OSError, ValueError) as e:
    raise UsageError(f"no usable bundle at {bundle} ({e}); run make gpu-bundle") from None


def start_checks(args, bundle: Path, scratch: Path) -> list[tuple[str, subprocess.Popen]]:
  """The checks' processes, each printing one JSON line to scratch/<name>.json (stderr beside it)."""
  from experiments.gpu_checks import FAMILY_VARIANTS
  families = args.families or list(FAMILY_VARIANTS)
  groups = [families[i::args.step_processes] for i in range(args.step_processes)]
  size = "gpu" if args.size == "full" else "tiny"
  commands = [(f"steps-{i}", ["--check=steps", f"--size={size}", f"--families={','.join(group)}"])
              for i, group in enumerate(groups) if group]
  codecs = [f"--codecs={','.join(args.codecs)}"] if args.codecs else []
  commands.append(("codecs", ["--check=all", f"--image={bundle / 'data' / KODAK_IMAGE}", *codecs]))
  started = []
  # Each check may take a sixth of the GPU's memory (they share it with the training in this process), and
  # runs in a session of its own so that its decoding children die with it.
  env = dict(os.environ, XLA_PYTHON_CLIENT_MEM_FRACTION="0.15")
  for name, arguments in commands:
    out, err = open(scratch / f"{name}.json", "w"), open(scratch / f"{name}.log", "w")
    started.append((name, subprocess.Popen([sys.executable, "-m", "experiments.gpu_checks", *arguments], stdout=out,
                                           stderr=err, env=env, start_new_session=True)))
  return started


def collect_checks(started, scratch: Path, deadline: float) -> dict:
  """Each check's last printed line (they print their results so far after every part): a check stopped at
  the deadline still reports what it finished."""
  results = {}
  for name, process in started:
    try:
      process.wait(timeout=max(deadline - time.time(), 1))
    except subprocess.TimeoutExpired:
      os.killpg(process.pid, signal.SIGKILL)
      process.wait()
    try:
      lines = (scratch / f"{name}.json").read_text().strip().splitlines()
      results[name] = json.loads(lines[-1]) if lines else {}
    except (OSError, ValueError) as e:
      results[name] = {"unreadable": str(e)}
    if process.returncode:
      log = (scratch / f"{name}.log").read_text(errors="replace").strip().splitlines()
      results[name].update(error=f"exit {process.returncode}", log_tail=log[-15:])
  return results


def train_slice(item: Slice, bundle: Path, workdir: Path, seconds: float, size: str) -> dict:
  """Trains one slice for ``seconds`` and exports its last step; -> what happened."""
  import csv

  from compzoo import exports
  from compzoo.codecs.learned import SHIPPED_WEIGHTS
  from compzoo.train.loop import train_and_evaluate
  config = slice_config(item, bundle, size)
  config.train.max_seconds = max(int(seconds), 1)
  if size == "full":
    config.train.init_from = str(SHIPPED_WEIGHTS / item.weights)
  started = time.monotonic()
  final = train_and_evaluate(config, workdir, progress=False)
  export = exports.read(workdir / "export")
  with open(workdir / "metrics.csv") as f:
    rows = list(csv.DictReader(f))
  rate = [float(r["images_per_s"]) for r in rows[1:]] or [float(rows[-1]["images_per_s"])]
  return {"slice": item.name, "config": item.config, "weights": item.weights, "data": item.data,
          "overrides": dict(item.overrides), "seconds": round(time.monotonic() - started, 1),
          "steps": int(rows[-1]["step"]), "images_per_s": round(sum(rate) / len(rate), 1),
          "first_loss": float(rows[0]["loss"]), "last_loss": float(rows[-1]["loss"]),
          "final": final, "weights_id": export.weights_id.hex()}


def pack(out: Path, report: dict, workdirs: dict[str, Path]) -> list[str]:
  """report.json, metrics.tar and exports-N.tar under ``out``, each under MAX_FILE_BYTES."""
  out.mkdir(parents=True, exist_ok=True)
  with tarfile.open(out / "metrics.tar", "w") as tar:
    for name, workdir in workdirs.items():
      for file in ("metrics.csv", "eval.csv", "init_from.json"):
        if (workdir / file).is_file():
          tar.add(workdir / file, arcname=f"{name}/{file}")
  bins: list[list[tuple[str, Path]]] = []
  for name, workdir in workdirs.items():
    export = workdir / "export"
    if not export.is_dir():
      continue
    size = sum(f.stat().st_size for f in export.iterdir())
    for group in bins:
      if sum(sum(f.stat().st_size for f in e.iterdir()) for _, e in group) + size <= MAX_FILE_BYTES:
        group.append((name, export))
        break
    else:
      bins.append([(name, export)])
  report["exports"] = {}
  for i, group in enumerate(bins[:MAX_EXPORT_TARS], 1):
    with tarfile.open(out / f"exports-{i}.tar", "w") as tar:
      for name, export in group:
        tar.add(export, arcname=name)
        report["exports"][name] = f"exports-{i}.tar"
  report["left_out"] = [name for group in bins[MAX_EXPORT_TARS:] for name, _ in group]
  (out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
  return sorted(p.name for p in out.iterdir())


def run(args) -> dict:
  import jax
  start = args.started_at or time.time()  # make gpu-run passes the time it started, before installing wheels
  bundle = Path(args.bundle)
  out = Path(args.out)
  report = {"devices": [str(d) for d in jax.devices()], "device_kind": jax.devices()[0].device_kind,
            "backend": jax.default_backend(), "versions": versions(), "bundle": read_manifest(bundle)}
  print(f"devices: {report['devices']} ({report['device_kind']})")
  print("versions: " + ", ".join(f"{k} {v}" for k, v in report["versions"].items()))
  print(f"bundle: {bundle.resolve()} ({report['bundle'].get('summary', '')})", flush=True)
  queue = [item for item in QUEUE if not args.queue or item.name in args.queue]
  with tempfile.TemporaryDirectory() as scratch:
    scratch = Path(scratch)
    checks = start_checks(args, bundle, scratch)
    train_end = start + args.budget_s - args.reserve_s
    report["queue"], workdirs = [], {}
    for i, item in enumerate(queue):
      left = train_end - time.time()
      seconds = left * item.share / sum(q.share for q in queue[i:]) - args.slice_overhead_s
      if seconds < args.min_slice_s:
        report["queue"].append({"slice": item.name, "skipped": f"{left:.0f} s left"})
        continue
      workdirs[item.name] = scratch / "work" / item.name
      print(f"training {item.name} for {seconds:.0f} s ({item.config} from compzoo/weights/{item.weights})", flush=True)
      try:
        row = train_slice(item, bundle, workdirs[item.name], seconds, args.size)
      except Exception as e:  # one slice's failure must not cost the others their time
        row = {"slice": item.name, "error": f"{type(e).__name__}: {str(e)[:500]}"}
      print(json.dumps(row), flush=True)
      report["queue"].append(row)
      out.mkdir(parents=True, exist_ok=True)
      (out / "report.json").write_text(json.dumps(report, indent=1) + "\n")  # if the command is cut short
    report["training_s"] = round(sum(r.get("seconds", 0) for r in report["queue"]), 1)
    report["checks"] = collect_checks(checks, scratch, start + args.budget_s - 10)
    report["wall_s"] = round(time.time() - start, 1)
    files = pack(out, report, workdirs)
  print(json.dumps({"checks": _summary(report["checks"]), "training_s": report["training_s"],
                    "wall_s": report["wall_s"], "out": files}))
  return report


def _summary(checks: dict) -> dict:
  """Per check: finite losses per family; cross-backend outcomes per direction."""
  summary = {}
  for name, result in checks.items():
    if "error" in result:
      summary[name] = result["error"]
    for row in result.get("steps", []):
      summary[row["family"]] = row["error"] if "error" in row else {"finite": row["finite"],
                                                                    "images_per_s": row["images_per_s"]}
    cross = result.get("cross", {})
    if "error" in cross:
      summary["cross"] = cross["error"]
      continue
    for direction, rows in cross.items():
      summary[direction] = rows if "error" in rows else {
          codec: row["outcome"] + ("" if row["as_stated"] else " (NOT AS STATED)") for codec, row in rows.items()}
  return summary


def dry_run(args) -> None:
  """On this CPU against the real bundle, in under a minute: the bundle is whole, each slice's data loads
  and its warm start travels, and each slice's config and every family's gpu config trace their training
  steps. Ends with the bundle's path and what would travel."""
  import importlib

  import jax
  import numpy as np
  from flax import nnx

  from compzoo.codecs.learned import SHIPPED_WEIGHTS
  from compzoo.data import pipeline
  from compzoo.errors import UsageError
  from compzoo.train import mesh as mesh_lib
  from compzoo.train.loop import compile_step, new_train_state
  from compzoo.train.registry import make_objective
  from experiments import gpu_bundle
  from experiments.gpu_checks import FAMILY_VARIANTS
  bundle = Path(args.bundle)
  manifest = read_manifest(bundle)
  for wheel in manifest["wheels"]:
    if not (bundle / "wheels" / wheel).is_file():
      raise UsageError(f"{bundle}: wheel {wheel} is missing; run make gpu-bundle")
  if not (bundle / "data" / KODAK_IMAGE).is_file():
    raise UsageError(f"{bundle}: {KODAK_IMAGE} is missing; run make gpu-bundle")
  travelling = {p.resolve() for p in gpu_bundle.travelling_files()}
  mesh = mesh_lib.make_mesh(jax.devices()[:1])

  def trace(config) -> str:
    graphdef, state = nnx.split(nnx.eval_shape(lambda: new_train_state(config)[1]))
    batch = pipeline.example_batch(config, np.zeros((8, 8, 3), np.uint8), mesh.size, config.data.crop)
    step = compile_step(make_objective(config.objective), graphdef, mesh)
    return str(jax.eval_shape(step, state, batch, jax.random.PRNGKey(0))[1]["loss"].dtype)

  for item in QUEUE:
    config = slice_config(item, bundle)
    source = pipeline.record_source(config.data, "train")
    for file in ("config.json", "params.msgpack"):
      if (SHIPPED_WEIGHTS / item.weights / file).resolve() not in travelling:
        raise UsageError(f"{item.name}'s warm start compzoo/weights/{item.weights}/{file} does not travel; "
                         "run make gpu-bundle")
    print(f"{item.name}: {len(source)} records of {item.data}, warm start {item.weights} travels, batch "
          f"{config.data.batch_size}x{config.data.crop}, step traces (loss {trace(config)})")
  for family, variant in FAMILY_VARIANTS.items():
    config = importlib.import_module(f"experiments.configs.{family}").get_config(variant)
    print(f"{family}:{variant} traces its step (loss {trace(config)})")
  print(f"bundle: {bundle.resolve()}")
  print(f"travels: {gpu_bundle.travelling_bytes(bundle) / 2**20:.1f} MiB")


def main(argv):
  if len(argv) > 1:
    from absl import app
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  from absl import flags, logging
  from experiments import launch
  logging.set_verbosity(logging.WARNING)
  args = flags.FLAGS
  launch.run(lambda: dry_run(args) if args.dry_run else run(args))


if __name__ == "__main__":
  os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # the checks' processes share the GPU
  from absl import app, flags
  flags.DEFINE_string("bundle", str(BUNDLE), "what make gpu-bundle prepared")
  flags.DEFINE_string("out", os.environ.get("OUT", "runs/gpu-run"), "where the report, metrics and exports go")
  flags.DEFINE_float("budget_s", 510, "wall seconds for the whole run, wheels installed (the device allows 600 a command)")
  flags.DEFINE_float("reserve_s", 30, "seconds kept after training for the checks to finish and for packing")
  flags.DEFINE_float("slice_overhead_s", SLICE_OVERHEAD_S, "seconds kept back per slice for its last evaluation "
                     "and export")
  flags.DEFINE_float("min_slice_s", 60, "a slice with less time than this is skipped (compiling takes most of it)")
  flags.DEFINE_float("started_at", 0, "the Unix time the command started (make gpu-run: before installing wheels)")
  flags.DEFINE_enum("size", "full", ["full", "tiny"], "full: the queue at the shipped models' size and the "
                    "families' gpu configs; tiny: their tiny variants, from scratch (tests)")
  flags.DEFINE_list("queue", None, f"slices to train (default: {', '.join(q.name for q in QUEUE)})")
  flags.DEFINE_list("families", None, "families whose gpu config steps (default: all)")
  flags.DEFINE_list("codecs", None, "learned codecs to cross-check and time (default: one per family)")
  flags.DEFINE_integer("step_processes", 3, "processes the families' steps are spread over")
  flags.DEFINE_bool("dry_run", False, "check the bundle and the configs on this CPU, train nothing")
  app.run(main)
