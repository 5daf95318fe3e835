"""Training objectives: what one step of the shared loop optimises.

An objective names its parameter groups (``groups``: group -> NNX filter over the model's parameter paths;
one optimizer each) and implements ``update(model, optimizers, batch, key) -> metrics``. Each optimizer's
``wrt`` is its group minus the parameters the config freezes, and objectives differentiate only with
respect to it, so frozen parameters get no gradient and no optimizer state.

Objectives are JAX pytrees (``flax.struct`` dataclasses): their weights (lambda, rate targets, ...) are
traced arguments of the compiled step, so operating points that differ only in those share one
compilation; strings and anything that steers Python control flow are static fields (``static_field``).

Batches are records: ``image`` (N×H×W×C in [0, 255], or any array for toy problems) plus side data
(``label_map``, ``label``, ...). ``forward`` hands the whole record to the model, which ignores what it
does not use. Objectives with a single loss subclass ``SingleLoss``; ``Recurrent`` trains a model's
per-step function with a credit-assignment rule (compzoo/train/credit.py). Adversarial objectives live in
compzoo/train/adversarial.py; compzoo/train/registry.py names them all.
"""

from __future__ import annotations

import abc
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from compzoo import metrics, rd
from compzoo.data.images import CAMVID_VOID
from compzoo.errors import UsageError
from compzoo.train import credit


def static_field(default):
  """A field that shapes the computation (a string, a count, a switch): part of the compiled program."""
  return flax.struct.field(pytree_node=False, default=default)


class Objective(abc.ABC):
  def groups(self) -> dict[str, Any]:
    """Parameter groups, each with its own optimizer: name -> NNX filter."""
    return {"model": nnx.Param}

  def at(self, step) -> "Objective":
    """This objective at training step ``step`` (a traced int32): where a schedule lives (a soft-rounding
    temperature, λ or a rate target annealed over steps), as ``self.replace(field=f(step))``. Unscheduled
    objectives are the same at every step."""
    del step
    return self

  @abc.abstractmethod
  def update(self, model, optimizers, batch, key) -> dict[str, jax.Array]:
    """One training step: updates the model in place through ``optimizers``; returns scalar metrics,
    'loss' among them."""

  def evaluate(self, model, batch) -> tuple[dict[str, jax.Array], jax.Array | None]:
    """Deterministic metrics on a batch (no noise, no update), and the images to show (or None)."""
    output = forward(model, batch)
    return quality_metrics(output, batch["image"]), output.reconstruction


def side_data(batch) -> dict:
  """The record's side data: everything but the image."""
  return {key: value for key, value in batch.items() if key != "image"}


def forward(model, batch, key=None):
  """The model's forward pass on a record: ``model(images, key, side=...)``."""
  return model(batch["image"], key, side=side_data(batch))


class SingleLoss(Objective):
  """An objective with one scalar loss over the 'model' group."""

  @abc.abstractmethod
  def loss(self, model, batch, key) -> tuple[jax.Array, dict[str, jax.Array]]:
    ...

  def update(self, model, optimizers, batch, key):
    optimizer = optimizers["model"]
    (_, step_metrics), grads = nnx.value_and_grad(
        self.loss, argnums=nnx.DiffState(0, optimizer.wrt), has_aux=True)(model, batch, key)
    step_metrics = dict(step_metrics)
    step_metrics["grad_norm"] = global_norm(grads)
    optimizer.update(model, grads)
    return step_metrics


@flax.struct.dataclass
class RateDistortion(SingleLoss):
  """rate + lmbda * distortion (bpp; MSE on the 0-255 scale or 1 - MS-SSIM); with ``rate_target`` the
  rate term is beta * max(H - H_target, 0) as in Mentzer et al. 2018."""

  lmbda: float = 0.01
  distortion: str = static_field("mse")
  rate_target: float | None = None
  beta: float = 1.0
  ms_ssim_scales: int = static_field(5)
  mse_weight: float = 0.0  # with distortion='ms_ssim': + mse_weight * MSE / 255² (see rd.distortion)
  colour_weight: float = 0.0  # with distortion='ms_ssim': + colour_weight * MSE of the 8×8 block means / 255²

  def loss(self, model, batch, key):
    output = forward(model, batch, key)
    loss, step_metrics = rd.rate_distortion_loss(output, batch["image"], self.lmbda, self.distortion,
                                                 self.rate_target, self.beta, self.ms_ssim_scales,
                                                 self.mse_weight, self.colour_weight)
    step_metrics["psnr"] = metrics.psnr(batch["image"], output.reconstruction)
    step_metrics["colour_psnr"] = metrics.colour_psnr(batch["image"], jnp.clip(output.reconstruction, 0, 255))
    return loss, step_metrics


@flax.struct.dataclass
class Lossless(SingleLoss):
  """Negative log-likelihood of the image in bits per sub-pixel, all streams together."""

  channels: int = static_field(3)

  def loss(self, model, batch, key):
    return rd.lossless_loss(forward(model, batch, key), self.channels)

  def evaluate(self, model, batch):
    _, step_metrics = rd.lossless_loss(forward(model, batch), self.channels)
    return step_metrics, None


@flax.struct.dataclass
class Recurrent(Objective):
  """A recurrent model's unroll (``model.unroll(batch)`` -> compzoo.nn.recurrence.Unroll, with the
  model's ``update(reads, inputs_t) -> (state, aux)`` and ``readout(state, aux, inputs_t) -> output``)
  with a loss at every step: ``distortion`` between the step's output and target, summed over the
  steps of each stage and averaged within it ('all': every stage counts; 'last': only the last).
  ``credit`` says how gradients flow back through the unroll (compzoo/train/credit.py: 'bptt',
  'tbptt:K', 'sab:K', 'uoro', 'rtrl'); rules see one record at a time and the batch's gradients are
  averaged."""

  credit: str = static_field("bptt")
  distortion: str = static_field("mse")
  steps: str = static_field("all")

  def __post_init__(self):
    credit.parse_credit(self.credit)
    if self.steps not in ("all", "last"):
      raise UsageError(f"recurrent objective steps={self.steps!r}: use 'all' or 'last'")

  def _recurrence(self, model, wrt, unroll, weights):
    """The model's unroll as one record's pure per-step functions of the trainable parameters."""
    graphdef, params, rest = nnx.split(model, wrt, ...)
    one = lambda tree: jax.tree.map(lambda leaf: leaf[None], tree)  # the model's methods take batches

    def update(params, reads, x_t):
      state, aux = nnx.merge(graphdef, params, rest).update(reads[None], one(x_t["inputs"]))
      return state[0], aux

    def readout(params, state, aux, x_t):
      output = nnx.merge(graphdef, params, rest).readout(state[None], aux, one(x_t["inputs"]))
      return x_t["weight"] * rd.distortion(one(x_t["target"]), output, self.distortion)

    recurrence = credit.Recurrence(update, readout, unroll.reads, unroll.writes, unroll.slots, unroll.width,
                                   unroll.memory)
    batch = jax.tree.leaves(unroll.targets)[0].shape[0]
    xs = {"inputs": unroll.inputs, "target": unroll.targets,
          "weight": jnp.broadcast_to(jnp.asarray(weights, jnp.float32), (batch, unroll.steps))}
    return recurrence, params, xs

  def gradients(self, model, wrt, batch, key):
    """(metrics, gradients of the parameters ``wrt`` filters, averaged over the batch) under the rule."""
    unroll = model.unroll(batch)
    if credit.needs_memory(self.credit) and unroll.memory is None:
      raise UsageError(f"credit {self.credit!r} backtracks through an attention memory; this model has none "
                       "(give it one: memory_stride, memory_topk)")
    recurrence, params, xs = self._recurrence(model, wrt, unroll, stage_weights(unroll.stages, self.steps))
    rule = credit.parse_credit(self.credit)
    keys = jax.random.split(key if key is not None else jax.random.PRNGKey(0), jax.tree.leaves(xs)[0].shape[0])
    (totals, losses), grads = jax.vmap(lambda x, k: rule.value_and_grad(recurrence, params, x, k))(xs, keys)
    grads = jax.tree.map(lambda g: jnp.mean(g, axis=0), grads)
    first, last = stage_losses(losses, unroll.stages)
    return {"loss": jnp.mean(totals), "loss/first_stage": first, "loss/last_stage": last,
            "grad_norm": global_norm(grads)}, grads

  def update(self, model, optimizers, batch, key):
    optimizer = optimizers["model"]
    step_metrics, grads = self.gradients(model, optimizer.wrt, batch, key)
    optimizer.update(model, grads)
    return step_metrics

  def evaluate(self, model, batch):
    """Per-stage distortion (each stage's mean over its steps) and, where the unroll has a baseline (the
    output with no network: JPEG's pixels for the refinement decoder), its distortion too."""
    unroll = model.unroll(batch)
    recurrence, params, xs = self._recurrence(model, nnx.Param, unroll, np.ones(unroll.steps))
    losses = jax.vmap(lambda x: credit.forward(recurrence, params, x))(xs)
    first, last = stage_losses(losses, unroll.stages, mean=True)
    result = {f"{self.distortion}/first_stage": first, f"{self.distortion}/last_stage": last}
    if unroll.baseline is not None:
      base = rd.distortion(unroll.targets, unroll.baseline, self.distortion)
      result[f"{self.distortion}/baseline"] = base
      if self.distortion == "mse":
        result["psnr_gain_db"] = 10.0 * jnp.log10(base / last)
    return result, None


def stage_weights(stages: np.ndarray, which: str) -> np.ndarray:
  """Per-step loss weights: each counted stage's steps share weight 1 (a stage's loss is its steps'
  mean), 'all' stages or the 'last' only."""
  stages = np.asarray(stages)
  counts = np.bincount(stages)
  weights = 1.0 / counts[stages]
  return weights if which == "all" else np.where(stages == stages.max(), weights, 0.0)


def stage_losses(losses, stages, mean: bool = False):
  """The first and the last stage's share of per-step losses [batch, T], averaged over the batch (summed
  over the stage's steps, or their mean)."""
  stages = np.asarray(stages)
  pick = lambda stage: jnp.mean(jnp.sum(losses[:, stages == stage], axis=1)) / (
      np.sum(stages == stage) if mean else 1)
  return pick(stages.min()), pick(stages.max())


@flax.struct.dataclass
class Classification(SingleLoss):
  """Cross-entropy of ``model.classify(images, side)`` against the record's ``label``: feature networks
  for distribution metrics, and (later) task heads on compressed latents."""

  def loss(self, model, batch, key):
    del key
    logits = model.classify(batch["image"], side_data(batch))
    labels = jnp.asarray(batch["label"], jnp.int32)
    loss = jnp.mean(-jnp.take_along_axis(jax.nn.log_softmax(logits), labels[:, None], axis=-1))
    return loss, {"loss": loss, "accuracy": jnp.mean(jnp.argmax(logits, -1) == labels)}

  def evaluate(self, model, batch):
    _, step_metrics = self.loss(model, batch, None)
    return step_metrics, None


@flax.struct.dataclass
class Segmentation(SingleLoss):
  """Per-pixel cross-entropy of ``model.segment(images, side)`` against the record's ``label_map``; pixels
  labelled ``ignore`` (CamVid's void) or beyond the model's classes count for nothing."""

  ignore: int = static_field(CAMVID_VOID)

  def _terms(self, model, batch):
    logits = model.segment(batch["image"], side_data(batch))
    labels = jnp.asarray(batch["label_map"], jnp.int32)
    valid = ((labels != self.ignore) & (labels < logits.shape[-1])).astype(jnp.float32)
    picked = jnp.clip(labels, 0, logits.shape[-1] - 1)[..., None]
    cross_entropy = -jnp.take_along_axis(jax.nn.log_softmax(logits), picked, axis=-1)[..., 0]
    count = jnp.maximum(jnp.sum(valid), 1.0)
    loss = jnp.sum(cross_entropy * valid) / count
    accuracy = jnp.sum((jnp.argmax(logits, -1) == labels) * valid) / count
    return loss, {"loss": loss, "accuracy": accuracy}

  def loss(self, model, batch, key):
    del key
    return self._terms(model, batch)

  def evaluate(self, model, batch):
    return self._terms(model, batch)[1], None


@flax.struct.dataclass
class TaskRateDistortion(SingleLoss):
  """Joint training of a codec and a task head on its latents (Torfason et al. 2018): the rate-distortion
  loss (``RateDistortion``'s fields) + ``task_weight`` × the task's cross-entropy (``task``:
  'classification' on ``label``, 'segmentation' on ``label_map``). The head reads the straight-through
  rounded latents, so the task term trains the analysis transform too."""

  lmbda: float = 0.01
  rate_target: float | None = None
  beta: float = 1.0
  task_weight: float = 1.0
  task: str = static_field("classification")
  ignore: int = static_field(CAMVID_VOID)

  def __post_init__(self):
    if self.task not in ("classification", "segmentation"):
      raise UsageError(f"joint objective task={self.task!r}: use 'classification' or 'segmentation'")

  def _task(self):
    return Classification() if self.task == "classification" else Segmentation(ignore=self.ignore)

  def loss(self, model, batch, key):
    rd_loss, rd_metrics = RateDistortion(self.lmbda, "mse", self.rate_target, self.beta).loss(model, batch, key)
    task_loss, task_metrics = self._task().loss(model, batch, None)
    step_metrics = {**{f"rd/{k}": v for k, v in rd_metrics.items()}, **{f"task/{k}": v for k, v in task_metrics.items()}}
    loss = rd_loss + self.task_weight * task_loss
    step_metrics["loss"] = loss
    return loss, step_metrics

  def evaluate(self, model, batch):
    quality, images = super().evaluate(model, batch)
    task_metrics, _ = self._task().evaluate(model, batch)
    return {**quality, **{f"task/{k}": v for k, v in task_metrics.items()}}, images


def quality_metrics(output: rd.RDOutput, target) -> dict[str, jax.Array]:
  result = {"bpp": output.bpp()}
  if output.reconstruction is not None:
    result["psnr"] = metrics.psnr(target, jnp.clip(output.reconstruction, 0, 255))
    result["mse"] = metrics.mse(target, output.reconstruction)
    result["colour_psnr"] = metrics.colour_psnr(target, jnp.clip(output.reconstruction, 0, 255))
  return result


def global_norm(grads) -> jax.Array:
  leaves = jax.tree.leaves(grads)
  return jnp.sqrt(sum(jnp.sum(jnp.square(g)) for g in leaves)) if leaves else jnp.zeros(())
