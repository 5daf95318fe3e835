"""The one training loop: build model, objective and optimizers from a config, then jit-compiled sharded
steps with checkpoints, logs and evaluation. Every method trains through ``train_and_evaluate``.

Reproducibility: step ``i`` uses batch ``i`` of the data pipeline and the key fold_in(seed, i), so a run
stopped after a checkpoint and resumed ends with the parameters of an uninterrupted run.
"""

from __future__ import annotations

import time
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

from compzoo import models
from compzoo.data import pipeline
from compzoo.errors import CompzooError, UsageError
from compzoo.train import checkpoint, mesh as mesh_lib
from compzoo.train.logs import MetricsLog
from compzoo.train.objectives import Objective, make_objective
from compzoo.train.optim import make_optimizer


class TrainState(nnx.Module):
  """The model and one optimizer per parameter group of the objective."""

  def __init__(self, model: nnx.Module, objective: Objective, optimizer_config, total_steps: int):
    self.model = model
    self.optimizers = nnx.Dict({
        group: nnx.Optimizer(model, make_optimizer(optimizer_config, total_steps, group), wrt=wrt)
        for group, wrt in objective.groups().items()})


def new_train_state(config: ml_collections.ConfigDict) -> tuple[Objective, TrainState]:
  """The objective and a freshly initialised model with its optimizers, as the config says."""
  objective = make_objective(config.objective)
  model = models.build(config.model, seed=config.train.seed)
  return objective, TrainState(model, objective, config.optimizer, config.train.steps)


def place(train_state: TrainState, mesh):
  """-> (graphdef, state replicated over ``mesh``): the pure pytree that compiled steps take and return."""
  graphdef, state = nnx.split(train_state)
  return graphdef, jax.device_put(state, mesh_lib.replicated(mesh))


def compile_step(objective: Objective, graphdef, mesh):
  """A jitted (state, batch, key) -> (state, metrics): batch split over the 'data' axis, state replicated."""

  def step(state, batch, key):
    train_state = nnx.merge(graphdef, state)
    step_metrics = objective.update(train_state.model, train_state.optimizers, batch, key)
    return nnx.state(train_state), step_metrics

  replicated = mesh_lib.replicated(mesh)
  return jax.jit(step, in_shardings=(replicated, mesh_lib.batch_sharding(mesh), replicated),
                 out_shardings=(replicated, replicated), donate_argnums=0)


def compile_eval(objective: Objective, graphdef, mesh):
  def evaluate(state, batch):
    return objective.evaluate(nnx.merge(graphdef, state).model, batch)

  return jax.jit(evaluate, in_shardings=(mesh_lib.replicated(mesh), mesh_lib.replicated(mesh)))


def train_and_evaluate(config: ml_collections.ConfigDict, workdir, stop_at: int | None = None,
                       progress: bool = True) -> dict[str, float]:
  """Trains to config.train.steps (resuming from WORKDIR/checkpoints); ``stop_at`` stops early after a
  checkpoint, as a preempted job would. Returns the last logged metrics."""
  workdir = Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  train_cfg = config.train
  total = train_cfg.steps
  mesh = mesh_lib.make_mesh()
  local_batch = mesh_lib.check_batch_size(config.data.batch_size, mesh)

  objective, train_state = new_train_state(config)
  checkpoints = checkpoint.Checkpoints(workdir, keep=train_cfg.get("keep_checkpoints", 2))
  start = checkpoints.latest_step() or 0
  if start:
    saved = checkpoints.config(start)
    for section in ("model", "objective"):
      if saved[section].to_dict() != config[section].to_dict():
        raise UsageError(f"{workdir} holds a run with another {section} ({saved[section].to_dict()}); "
                         "resume with its config or use a new workdir")
    checkpoints.restore(start, train_state.model, train_state.optimizers)
  elif train_cfg.get("init_from"):
    _init_from(train_state.model, config, train_cfg.init_from)

  graphdef, state = place(train_state, mesh)
  step_fn = compile_step(objective, graphdef, mesh)
  eval_fn = compile_eval(objective, graphdef, mesh)

  train_source = pipeline.image_source(config.data, "train")
  eval_images = pipeline.eval_batch(_eval_source(config.data, train_source), config.data.crop,
                                    train_cfg.get("eval_images", 4))
  batches = pipeline.train_batches(train_source, config.data.crop, local_batch,
                                   seed=train_cfg.seed + 7919 * jax.process_index(), start_step=start)
  base_key = jax.random.PRNGKey(train_cfg.seed)
  log = MetricsLog(workdir, start, total, progress=progress and jax.process_index() == 0)
  last, pending, interval_start, done = {}, [], time.perf_counter(), start
  try:
    for step in range(start, total):
      batch = mesh_lib.shard_batch({"image": next(batches)}, mesh)
      state, step_metrics = step_fn(state, batch, jax.random.fold_in(base_key, step))
      pending.append(step_metrics)
      done = step + 1
      log.advance()
      finished = done == total or done == stop_at
      if done % train_cfg.log_every == 0 or finished:
        last = _mean(pending)
        last["images_per_s"] = len(pending) * config.data.batch_size / (time.perf_counter() - interval_start)
        if not np.isfinite(last["loss"]):
          raise CompzooError(f"loss became {last['loss']} by step {done}; lower the learning rate or check the data")
        log.scalars(done, last)
        pending, interval_start = [], time.perf_counter()
      if done % train_cfg.eval_every == 0 or finished:
        values, pictures = eval_fn(state, {"image": jnp.asarray(eval_images)})
        log.evaluation(done, {k: float(v) for k, v in values.items()},
                       None if pictures is None else np.asarray(pictures))
      if done % train_cfg.checkpoint_every == 0 or finished:
        nnx.update(train_state, state)
        checkpoints.save(done, train_state.model, train_state.optimizers, config)
      if finished:
        break
  finally:
    log.close()
    checkpoints.close()
  nnx.update(train_state, state)
  if done == total and jax.process_index() == 0:
    checkpoint.export(workdir / "export", config, train_state.model)
  return last


def _init_from(model, config, path) -> None:
  """Warm start: the weights of another run (a workdir or an export) of the same model, with fresh
  optimizers and this run's objective (e.g. another rate target, as operating points are usually trained)."""
  saved_config, saved_model, _ = checkpoint.load_model(path)
  if saved_config.model.to_dict() != config.model.to_dict():
    raise UsageError(f"train.init_from={path} holds another model ({saved_config.model.to_dict()})")
  nnx.update(model, nnx.state(saved_model, nnx.Param))


def _eval_source(data, train_source):
  try:
    return pipeline.image_source(data, data.get("eval_split", "val"))
  except CompzooError:  # folders without a validation split evaluate on training images
    return train_source


def _mean(metrics_list) -> dict[str, float]:
  stacked = jax.device_get(metrics_list)
  return {k: float(np.mean([m[k] for m in stacked])) for k in stacked[0]}
