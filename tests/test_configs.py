"""Every config variant, the GPU ones included, checked on the CPU so that a config nobody can run on this
machine still cannot ship broken.

* Every variant builds its model at its configured size and traces its whole training step (objective,
  optimizers, batch) with ``jax.eval_shape``: settings, shapes and dtypes fit. Tracing compiles nothing, so
  this costs seconds per variant.
* Each paper-size architecture (each distinct model of the ``gpu`` variants) also takes real steps from its
  real initialisation: gradients are finite and the loss does not blow up. Depth and width, not crop size,
  is what breaks a network (l3c:gpu's first gradient was NaN until its residual blocks started as the
  identity), so batches are one image (two for an MMD), crops the variant's own where its objective needs
  them (MS-SSIM scales), else at most 64 pixels; objectives that differ only in their weights step once.
  Smaller variants of the same networks take real steps in the methods' own tests, which train their tiny
  variants, and in the runs that trained the shipped (cpu) weights.

Variants that differ only in their objective's weights (cpm's rate targets) share one traced step:
objectives are pytrees, traced into the step, so each variant still trains with its own objective.
Variants that differ only in their data set (DPLC's MNIST and CIFAR-10: one channel or three) share one
network check, on the variant with the most channels; an objective repeated across data sets is
traced once."""

import importlib
import json
from pathlib import Path

import jax
import numpy as np
import pytest
from flax import nnx

from compzoo.data import pipeline
from compzoo.train import mesh as mesh_lib
from compzoo.train.loop import compile_step, new_train_state, place
from compzoo.train.registry import make_objective

pytestmark = pytest.mark.slow  # make test-fast leaves these out

# Every config file in experiments/configs (presets.py holds what they share): discovered, never listed.
CONFIGS = Path(__file__).resolve().parents[1] / "experiments" / "configs"
METHODS = tuple(sorted(path.stem for path in CONFIGS.glob("*.py") if path.stem not in ("__init__", "presets")))
# Recurrences over patches step at the smallest crop with a neighbour on every side (2×2 patches of 8): the
# credit rules' cost grows with the crop, the network's shapes do not.
RECURRENT_CROP = 16
STEPS = 2


def _groups():
  groups = {}
  for method in METHODS:
    module = importlib.import_module(f"experiments.configs.{method}")
    for variant in module.VARIANTS:
      config = module.get_config(variant)
      shape = {k: v for k, v in config.objective.items() if not isinstance(v, float) or k == "ms_ssim_scales"}
      model = {k: v for k, v in config.model.to_dict().items() if k != "channels"}
      key = json.dumps([method, model, config.optimizer.to_dict(), config.data.crop, shape], sort_keys=True)
      groups.setdefault(key, []).append((config.model.get("channels", 3), method, variant))
  return [[(m, v) for _, m, v in sorted(group, key=lambda item: -item[0])] for group in groups.values()]


GROUPS = _groups()


# SC's model is GC's encoder, generator and multi-scale discriminator plus its label-map parts, trained on the
# same GAN objective: stepping SC steps GC's networks too.
CONTAINED_IN = {("gc", "gpu-gc"): ("gc", "gpu-sc")}


def _paper_size(groups):
  """The first group of each distinct model among the gpu variants: one real check per architecture."""
  seen, chosen = set(), []
  for group in groups:
    method, variant = group[0]
    if variant.startswith("gpu") and group[0] not in CONTAINED_IN:
      model = importlib.import_module(f"experiments.configs.{method}").get_config(variant).model.to_dict()
      key = json.dumps([method, {k: v for k, v in model.items() if k != "channels"}], sort_keys=True)
      if key not in seen:
        seen.add(key)
        chosen.append(group)
  return chosen


PAPER_SIZE = _paper_size(GROUPS)


def _ids(groups):
  return [",".join(f"{m}:{v}" for m, v in g) for g in groups]


def _setting(variants, astronaut):
  """(module, config of the first variant, the objectives to check, one global batch) of a group."""
  method = variants[0][0]
  module = importlib.import_module(f"experiments.configs.{method}")
  first = module.get_config(variants[0][1])
  count = 2 if method == "dplc" else 1  # an MMD between latents needs two samples
  first.data.batch_size = count
  crop = first.data.crop if first.objective.get("distortion") == "ms_ssim" else min(first.data.crop, 64)
  if first.objective.name == "recurrent":
    crop = RECURRENT_CROP
  record = pipeline.example_batch(first, astronaut, count, crop)
  objectives = {}
  for _, variant in variants:
    objective = module.get_config(variant).objective
    if "critic_steps" in objective:  # one critic step checks the same networks; five only cost compile time
      objective.critic_steps = 1
    objectives.setdefault(objective.to_json(sort_keys=True), objective)
  mesh = mesh_lib.make_mesh(jax.devices()[:1])
  return first, list(objectives.values()), mesh_lib.shard_batch(record, mesh), mesh


@pytest.mark.parametrize("variants", GROUPS, ids=_ids(GROUPS))
def test_variants_trace_their_training_step(variants, astronaut):
  first, objectives, batch, mesh = _setting(variants, astronaut)
  graphdef, state = nnx.split(nnx.eval_shape(lambda: new_train_state(first)[1]))
  for objective in objectives:
    step = compile_step(make_objective(objective), graphdef, mesh)
    after, metrics = jax.eval_shape(step, state, batch, jax.random.PRNGKey(0))
    assert jax.tree.structure(after) == jax.tree.structure(state), variants
    assert jax.tree.map(lambda a: (a.shape, a.dtype), after) == jax.tree.map(lambda a: (a.shape, a.dtype), state)
    assert metrics["loss"].shape == () and "grad_norm" in metrics, (variants, objective)


def _kinds(objectives):
  """One objective of each kind: those differing only in weights (cpm's rate targets) run the same network
  through the same compiled step."""
  kinds = {}
  for objective in objectives:
    kinds.setdefault(json.dumps({k: v for k, v in objective.items() if not isinstance(v, float)}, sort_keys=True),
                     objective)
  return list(kinds.values())


@pytest.mark.parametrize("variants", PAPER_SIZE, ids=_ids(PAPER_SIZE))
def test_paper_size_models_take_finite_steps(variants, astronaut):
  first, objectives, batch, mesh = _setting(variants, astronaut)
  _, state = new_train_state(first)
  graphdef, initial = place(state, mesh)
  for objective in _kinds(objectives):
    step = compile_step(make_objective(objective), graphdef, mesh)
    params, losses = jax.tree.map(lambda x: x.copy(), initial), []
    for i in range(STEPS):
      params, metrics = step(params, batch, jax.random.PRNGKey(i))
      metrics = jax.device_get(metrics)
      assert np.isfinite(metrics["loss"]) and np.isfinite(metrics["grad_norm"]), (objective, i, metrics)
      losses.append(float(metrics["loss"]))
    assert losses[-1] < 2 * abs(losses[0]) + 1, (objective, losses)
