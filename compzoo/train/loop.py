"""The one training loop: build model, objective and optimizers from a config, then jit-compiled sharded
steps with checkpoints, logs and evaluation. Every method trains through ``train_and_evaluate``.

Reproducibility: step ``i`` uses batch ``i`` of the data pipeline and the key fold_in(seed, i), so a run
stopped after a checkpoint and resumed ends with the parameters of an uninterrupted run. That is also how a
run trains under a wall-clock budget (``train.max_seconds``): it stops after a checkpoint once the budget
is spent, and running it again goes on from there (how a GPU config is trained in 10-minute commands).

Several processes (``jax.distributed``, see compzoo/train/cluster.py) run this same loop: each reads its own
rows of every global batch (the rows a one-process run would have put on its devices), the compiled step
sees one global batch, and only process 0 writes metrics.csv, eval.csv, TensorBoard and the export; orbax
checkpoints are saved and restored by all of them together.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

from compzoo import checkpoints as checkpoints_lib
from compzoo import exports, models
from compzoo.data import pipeline
from compzoo.errors import CompzooError, UsageError
from compzoo.train import groups, mesh as mesh_lib
from compzoo.train.logs import MetricsLog, NoLog, ReadsLog
from compzoo.train.objectives import Objective
from compzoo.train.optim import make_optimizer
from compzoo.train.registry import make_objective


class TrainState(nnx.Module):
  """The model and one optimizer per parameter group of the objective; frozen parameters belong to no
  optimizer (no state, no gradient)."""

  def __init__(self, model: nnx.Module, objective: Objective, optimizer_config, total_steps: int, frozen=None):
    self.model = model
    trainable = (lambda wrt: wrt) if frozen is None else (lambda wrt: nnx.All(wrt, nnx.Not(frozen)))
    self.optimizers = nnx.Dict({
        group: nnx.Optimizer(model, make_optimizer(optimizer_config, total_steps, group), wrt=trainable(wrt))
        for group, wrt in objective.groups().items()})


def new_train_state(config: ml_collections.ConfigDict) -> tuple[Objective, TrainState]:
  """The objective and a freshly initialised model with its optimizers, as the config says (parameters
  under ``train.freeze`` get none)."""
  objective = make_objective(config.objective)
  model = models.build(config.model, seed=config.train.seed)
  set_compute_dtype(model, config.train.get("compute_dtype", ""))
  frozen = groups.frozen_filter(model, config.train.get("freeze", ""))
  return objective, TrainState(model, objective, config.optimizer, config.train.steps, frozen)


COMPUTE_DTYPES = {"": None, "float32": None, "bfloat16": "bfloat16"}


def set_compute_dtype(model: nnx.Module, name: str) -> None:
  """Mixed precision (``train.compute_dtype='bfloat16'``): every convolution and dense layer computes in
  bfloat16 (its inputs and parameters cast at the call; float32 accumulation on GPU/TPU) while parameters,
  optimizer states and the losses stay float32. Training only: exports keep no dtype, so codecs decode in
  float32. For models whose training arithmetic has no exactness to keep (not cpm's context model)."""
  if name not in COMPUTE_DTYPES:
    raise UsageError(f"train.compute_dtype must be one of {', '.join(map(repr, COMPUTE_DTYPES))}, not {name!r}")
  if COMPUTE_DTYPES[name] is None:
    return
  for _, module in nnx.iter_modules(model):
    if isinstance(module, (nnx.Conv, nnx.ConvTranspose, nnx.Linear)):
      module.dtype = jnp.dtype(COMPUTE_DTYPES[name])


def place(train_state: TrainState, mesh):
  """-> (graphdef, state replicated over ``mesh``): the pure pytree that compiled steps take and return."""
  graphdef, state = nnx.split(train_state)
  return graphdef, jax.device_put(state, mesh_lib.replicated(mesh))


def compile_step(objective: Objective, graphdef, mesh):
  """A jitted (state, batch, key) -> (state, metrics): batch split over the 'data' axis, state replicated.
  The objective is an argument of the compiled program (its weights are traced), so one train state's step
  runs objectives that differ only in such numbers (cpm's rate targets) without compiling again."""
  step = _jitted_step(graphdef, mesh)

  def run(state, batch, key, step_index=0):
    return step(state, batch, key, objective, jnp.asarray(step_index, jnp.int32))

  run.lower = lambda state, batch, key, step_index=0: step.lower(  # for memory analyses
      state, batch, key, objective, jnp.asarray(step_index, jnp.int32))
  return run


def compile_eval(objective: Objective, graphdef, mesh):
  evaluate = _jitted_eval(graphdef, mesh)
  return lambda state, batch: evaluate(state, batch, objective)


@functools.lru_cache(maxsize=8)
def _jitted_step(graphdef, mesh):
  def step(state, batch, key, objective, step_index):
    train_state = nnx.merge(graphdef, state)
    # The objective at this step (``Objective.at``): schedules are traced, so no step recompiles.
    step_metrics = objective.at(step_index).update(train_state.model, train_state.optimizers, batch, key)
    return nnx.state(train_state), step_metrics

  replicated = mesh_lib.replicated(mesh)
  return jax.jit(step, in_shardings=(replicated, mesh_lib.batch_sharding(mesh), replicated, replicated, replicated),
                 out_shardings=(replicated, replicated), donate_argnums=0)


@functools.lru_cache(maxsize=8)
def _jitted_eval(graphdef, mesh):
  def evaluate(state, batch, objective):
    return objective.evaluate(nnx.merge(graphdef, state).model, batch)

  replicated = mesh_lib.replicated(mesh)
  return jax.jit(evaluate, in_shardings=(replicated, replicated, replicated))


def train_and_evaluate(config: ml_collections.ConfigDict, workdir, stop_at: int | None = None,
                       progress: bool = True) -> dict[str, float]:
  """Trains to config.train.steps (resuming from WORKDIR/checkpoints); stops early after a checkpoint at
  step ``stop_at`` (as a preempted job would) or once ``config.train.max_seconds`` have passed. Returns
  the last logged metrics. The phases: resume or warm-start, place on the mesh, open the data, run the
  steps (logging, evaluating and checkpointing as the config says), export."""
  workdir = Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  started = time.monotonic()
  mesh = mesh_lib.make_mesh()
  mesh_lib.check_batch_size(config.data.batch_size, mesh)
  objective, train_state = new_train_state(config)
  checkpoints = checkpoints_lib.Checkpoints(workdir, keep=config.train.get("keep_checkpoints", 2))
  try:
    start = _resume_or_warm_start(config, workdir, train_state, checkpoints)
    graphdef, state = _place_restored(train_state, checkpoints, start, mesh)
    batches, eval_records = _open_data(config, start, mesh)
    steps = _Steps(config, workdir, stop_at, started, mesh, train_state, checkpoints)
    state, last, done = steps.run(objective, graphdef, state, batches, eval_records, start, progress)
  finally:
    checkpoints.close()
  nnx.update(train_state, state)
  if (done == config.train.steps or config.train.get("export_on_stop", False)) and _chief():
    exports.write(workdir / "export", config, train_state.model)
  return last


def _chief() -> bool:
  return jax.process_index() == 0


def _resume_or_warm_start(config, workdir: Path, train_state: TrainState, checkpoints) -> int:
  """The step to start from: the latest checkpoint's (whose run must have this model, objective and
  freeze), else 0, after a warm start from ``train.init_from`` if one is set."""
  start = checkpoints.latest_step() or 0
  if start:
    saved = checkpoints.config(start)
    for section in ("model", "objective"):
      if saved[section].to_dict() != config[section].to_dict():
        raise UsageError(f"{workdir} holds a run with another {section} ({saved[section].to_dict()}); "
                         "resume with its config or use a new workdir")
    if groups.parse_prefixes(saved.train.get("freeze", "")) != groups.parse_prefixes(config.train.get("freeze", "")):
      raise UsageError(f"{workdir} holds a run that froze {saved.train.get('freeze', '') or 'nothing'}; "
                       "resume with the same train.freeze or use a new workdir")
  elif config.train.get("init_from"):
    report = groups.warm_start(train_state.model, config.train.init_from)
    if _chief():
      groups.write_report(report, workdir)
      print(report.summary())
  return start


def _place_restored(train_state: TrainState, checkpoints, start: int, mesh):
  """``place``, with checkpoint ``start`` restored into the placed state (every process restores the
  replicated arrays of the whole mesh)."""
  graphdef, state = place(train_state, mesh)
  if start:
    nnx.update(train_state, state)
    checkpoints.restore(start, train_state.model, train_state.optimizers)
    state = nnx.state(train_state)
  return graphdef, state


def _open_data(config, start: int, mesh):
  """(this process's training batches from step ``start``, the evaluation batch replicated on the mesh)."""
  train_source = pipeline.record_source(config.data, "train")
  degrade = config.data.get("jpeg_quality")
  eval_records = pipeline.eval_batch(_eval_source(config.data, train_source), config.data.crop,
                                     config.train.get("eval_images", 4), degrade)
  batches = pipeline.train_batches(train_source, config.data.crop, config.data.batch_size, seed=config.train.seed,
                                   start_step=start, flip=config.data.get("flip", True), jpeg_quality=degrade,
                                   shard=(jax.process_index(), jax.process_count()),
                                   with_indices=config.train.get("log_reads", False), darken=config.data.get("darken"))
  return batches, mesh_lib.replicate(eval_records, mesh)


class _Steps:
  """The step loop and what it does on the way: log every ``log_every``, evaluate every ``eval_every``,
  checkpoint every ``checkpoint_every`` and at the stop (the end, ``stop_at`` or the time budget)."""

  def __init__(self, config, workdir: Path, stop_at, started: float, mesh, train_state, checkpoints):
    self.config, self.workdir, self.stop_at, self.started, self.mesh = config, workdir, stop_at, started, mesh
    self.train_state, self.checkpoints = train_state, checkpoints
    self.budget = float(config.train.get("max_seconds", 0) or 0)

  def run(self, objective, graphdef, state, batches, eval_records, start: int, progress: bool):
    """-> (the state, the last logged metrics, the steps done)."""
    train = self.config.train
    step_fn = compile_step(objective, graphdef, self.mesh)
    eval_fn = compile_eval(objective, graphdef, self.mesh)
    base_key = jax.random.PRNGKey(train.seed)
    log = MetricsLog(self.workdir, start, train.steps, progress=progress) if _chief() else NoLog()
    reads = ReadsLog(self.workdir, jax.process_index(), start) if train.get("log_reads", False) else None
    last, pending, interval_start, done = {}, [], time.perf_counter(), start
    try:
      for step in range(start, train.steps):
        local = next(batches)
        if reads:
          reads.write(step, local.pop("source_index"))
        state, step_metrics = step_fn(state, mesh_lib.shard_batch(local, self.mesh),
                                      jax.random.fold_in(base_key, step), step)
        pending.append(step_metrics)
        done = step + 1
        log.advance()
        out_of_time = self.budget > 0 and mesh_lib.agree(time.monotonic() - self.started >= self.budget)
        finished = done == train.steps or done == self.stop_at or out_of_time
        if done % train.log_every == 0 or finished:
          last = self._log_interval(log, done, pending, interval_start)
          pending, interval_start = [], time.perf_counter()
        if done % train.eval_every == 0 or finished:
          values, pictures = eval_fn(state, eval_records)
          log.evaluation(done, {k: float(v) for k, v in values.items()},
                         None if pictures is None else np.asarray(pictures))
        if train.checkpoint_every and (done % train.checkpoint_every == 0 or finished):
          nnx.update(self.train_state, state)
          self.checkpoints.save(done, self.train_state.model, self.train_state.optimizers, self.config)
        if finished:
          if out_of_time and done < train.steps:
            print(f"stopped at step {done} of {train.steps}: train.max_seconds={self.budget:g} spent; "
                  "run again to resume")
          break
    finally:
      log.close()
    return state, last, done

  def _log_interval(self, log, done: int, pending: list, interval_start: float) -> dict[str, float]:
    """The interval's mean metrics, its throughput and wall time (``interval_s``: summing the column of
    metrics.csv gives training hours across resumes); a loss that is not finite stops the run."""
    last = _mean(pending)
    seconds = time.perf_counter() - interval_start
    last["images_per_s"], last["interval_s"] = len(pending) * self.config.data.batch_size / seconds, seconds
    if not np.isfinite(last["loss"]):
      raise CompzooError(f"loss became {last['loss']} by step {done}; lower the learning rate or check the data")
    log.scalars(done, last)
    return last


def _eval_source(data, train_source):
  try:
    return pipeline.record_source(data, data.get("eval_split", "val"))
  except CompzooError:  # folders without a validation split evaluate on training images
    return train_source


def _mean(metrics_list) -> dict[str, float]:
  stacked = jax.device_get(metrics_list)
  return {k: float(np.mean([m[k] for m in stacked])) for k in stacked[0]}
