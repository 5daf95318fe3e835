"""Every variant of every config, the GPU ones included, takes a few finite steps on the CPU: the model
builds at its configured size, gradients are finite and the loss does not blow up. Batches are one image
(two for an MMD) at the variant's size, so a config nobody can run on this machine still cannot ship
broken. Crops are the variant's own where its objective needs them (MS-SSIM scales), else at most 64
pixels: depth and width, not crop size, is what breaks a network. The tiny variants of the methods in
``TINY_TRAINED_ELSEWHERE`` are left to those methods' own tests, which train them, and the variants in
``COVERED_BY`` to the variant named there, which steps the same networks and more.

Variants that differ only in their objective's weights (cpm's rate targets) share one compiled step:
objectives are pytrees, traced into the step, so each variant still trains with its own objective.
Variants that differ only in their data set (DPLC's MNIST and CIFAR-10: one channel or three) share one
network check, on the variant with the most channels; an objective repeated across data sets is
stepped once."""

import importlib
import json

import jax
import numpy as np
import pytest

from compzoo.data import pipeline
from compzoo.train import mesh as mesh_lib
from compzoo.train.loop import compile_step, new_train_state, place
from compzoo.train.registry import make_objective
from experiments.configs import latent_tasks

pytestmark = pytest.mark.slow  # make test-fast leaves these out

METHODS = ("bmshj2018_factorized", "cpm", "dplc", "feature_net", "gc", "l3c", "latent_tasks", "pixelcnn", "refine")
TINY_TRAINED_ELSEWHERE = {"dplc": "tests/test_dplc.py", "gc": "tests/test_gc.py"}  # their tiny variants train there
# Variants whose networks and objective another variant steps with more: SC's model is GC's encoder,
# generator and multi-scale discriminator plus its label-map parts, trained on the same GAN objective.
# The refinement decoder's and the latent tasks' tiny variants are their cpu ones with fewer features.
COVERED_BY = {("gc", "cpu-gc"): "cpu-sc", ("gc", "gpu-gc"): "gpu-sc",
              **{("refine", f"tiny-{rule}"): f"cpu-{rule}" for rule in ("bptt", "tbptt", "sab", "uoro", "rtrl")},
              **{("latent_tasks", f"tiny-{job}"): f"cpu-{job}" for job in latent_tasks.JOBS}}
# Recurrences over patches step at the smallest crop with a neighbour on every side (2×2 patches of 8): the
# credit rules' cost grows with the crop, the network's shapes do not.
RECURRENT_CROP = 16
STEPS = 2


def _groups():
  groups = {}
  for method in METHODS:
    module = importlib.import_module(f"experiments.configs.{method}")
    for variant in module.VARIANTS:
      if (method in TINY_TRAINED_ELSEWHERE and variant.startswith("tiny-")) or (method, variant) in COVERED_BY:
        continue
      config = module.get_config(variant)
      shape = {k: v for k, v in config.objective.items() if not isinstance(v, float) or k == "ms_ssim_scales"}
      model = {k: v for k, v in config.model.to_dict().items() if k != "channels"}
      key = json.dumps([method, model, config.optimizer.to_dict(), config.data.crop, shape], sort_keys=True)
      groups.setdefault(key, []).append((config.model.get("channels", 3), method, variant))
  return [[(m, v) for _, m, v in sorted(group, key=lambda item: -item[0])] for group in groups.values()]


GROUPS = _groups()


@pytest.mark.parametrize("variants", GROUPS, ids=[",".join(f"{m}:{v}" for m, v in g) for g in GROUPS])
def test_variants_take_finite_steps(variants, astronaut):
  method = variants[0][0]
  module = importlib.import_module(f"experiments.configs.{method}")
  first = module.get_config(variants[0][1])
  count = 2 if method == "dplc" else 1  # an MMD between latents needs two samples
  first.data.batch_size = count
  crop = first.data.crop if first.objective.get("distortion") == "ms_ssim" else min(first.data.crop, 64)
  if first.objective.name == "recurrent":
    crop = RECURRENT_CROP
  _, state = new_train_state(first)
  mesh = mesh_lib.make_mesh(jax.devices()[:1])
  photo = np.resize(astronaut, (max(crop, 512), max(crop, 512), 3))[:crop, :crop, :first.model.get("channels", 3)]
  record = {"image": np.stack([photo, photo[::-1]][:count])}
  task = first.objective.get("task", first.objective.name)  # a joint objective names its task
  if task == "classification":
    record["label"] = np.arange(count, dtype=np.int32)
  if task == "segmentation" or first.model.get("label_classes"):
    record["label_map"] = np.indices((count, crop, crop)).sum(0).astype(np.int32) % 12
  if first.data.get("jpeg_quality"):
    record = pipeline.with_jpeg({"image": record["image"][0]}, first.data.jpeg_quality[0])
    record = {key: value[None] for key, value in record.items()}
  batch = mesh_lib.shard_batch(record, mesh)
  graphdef, initial = place(state, mesh)
  stepped = set()
  for _, variant in variants:
    objective = module.get_config(variant).objective
    if objective.to_json(sort_keys=True) in stepped:
      continue
    stepped.add(objective.to_json(sort_keys=True))
    if "critic_steps" in objective:  # one critic step checks the same networks; five only cost compile time
      objective.critic_steps = 1
    step = compile_step(make_objective(objective), graphdef, mesh)
    params, losses = jax.tree.map(lambda x: x.copy(), initial), []
    for i in range(STEPS):
      params, metrics = step(params, batch, jax.random.PRNGKey(i))
      metrics = jax.device_get(metrics)
      assert np.isfinite(metrics["loss"]) and np.isfinite(metrics["grad_norm"]), (variant, i, metrics)
      losses.append(float(metrics["loss"]))
    assert losses[-1] < 2 * abs(losses[0]) + 1, (variant, losses)
