"""Training objectives: what one step of the shared loop optimises.

An objective names its parameter groups (``groups``: group -> NNX filter over the model's parameter paths;
one optimizer each) and implements ``update(model, optimizers, batch, key) -> metrics``. Objectives with a
single loss subclass ``SingleLoss`` and only write ``loss``; their gradient comes from the model's own
``gradient_rule`` when it has one (truncated BPTT, SAB, UORO, RTRL, ...), else from reverse-mode autodiff.
Adversarial objectives live in compzoo/train/adversarial.py.

Batches are dicts: 'image' (N×H×W×3 in [0, 255], or any array for toy problems), optionally 'condition'.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp
from flax import nnx

from compzoo import metrics, rd
from compzoo.errors import UsageError

class Objective(abc.ABC):
  def groups(self) -> dict[str, Any]:
    """Parameter groups, each with its own optimizer: name -> NNX filter."""
    return {"model": nnx.Param}

  @abc.abstractmethod
  def update(self, model, optimizers, batch, key) -> dict[str, jax.Array]:
    """One training step: updates the model in place through ``optimizers``; returns scalar metrics,
    'loss' among them."""

  def evaluate(self, model, batch) -> tuple[dict[str, jax.Array], jax.Array | None]:
    """Deterministic metrics on a batch (no noise, no update), and the images to show (or None)."""
    output = model(batch["image"])
    return quality_metrics(output, batch["image"]), output.reconstruction


def default_gradient_rule(loss_fn: Callable, model, batch, key):
  """Reverse-mode autodiff of the whole forward pass: ((loss, metrics), grads of all nnx.Param)."""
  return nnx.value_and_grad(loss_fn, has_aux=True)(model, batch, key)


class SingleLoss(Objective):
  """An objective with one scalar loss over all parameters."""

  @abc.abstractmethod
  def loss(self, model, batch, key) -> tuple[jax.Array, dict[str, jax.Array]]:
    ...

  def update(self, model, optimizers, batch, key):
    rule = getattr(model, "gradient_rule", None)
    if rule is None:
      (_, step_metrics), grads = default_gradient_rule(self.loss, model, batch, key)
    else:
      (_, step_metrics), grads = rule(self.loss, batch, key)
    step_metrics = dict(step_metrics)
    step_metrics["grad_norm"] = _global_norm(grads)
    optimizers["model"].update(model, grads)
    return step_metrics


@dataclasses.dataclass(frozen=True)
class RateDistortion(SingleLoss):
  """rate + lmbda * distortion (bpp; MSE on the 0-255 scale or 1 - MS-SSIM); with ``rate_target`` the
  rate term is beta * max(H - H_target, 0) as in Mentzer et al. 2018."""

  lmbda: float = 0.01
  distortion: str = "mse"
  rate_target: float | None = None
  beta: float = 1.0
  ms_ssim_scales: int = 5

  def loss(self, model, batch, key):
    output = model(batch["image"], key)
    loss, step_metrics = rd.rate_distortion_loss(output, batch["image"], self.lmbda, self.distortion,
                                                 self.rate_target, self.beta, self.ms_ssim_scales)
    step_metrics["psnr"] = metrics.psnr(batch["image"], output.reconstruction)
    return loss, step_metrics


@dataclasses.dataclass(frozen=True)
class Lossless(SingleLoss):
  """Negative log-likelihood of the image in bits per sub-pixel, all streams together."""

  channels: int = 3

  def loss(self, model, batch, key):
    return rd.lossless_loss(model(batch["image"], key), self.channels)

  def evaluate(self, model, batch):
    _, step_metrics = rd.lossless_loss(model(batch["image"]), self.channels)
    return step_metrics, None


def quality_metrics(output: rd.RDOutput, target) -> dict[str, jax.Array]:
  result = {"bpp": output.bpp()}
  if output.reconstruction is not None:
    result["psnr"] = metrics.psnr(target, jnp.clip(output.reconstruction, 0, 255))
    result["mse"] = metrics.mse(target, output.reconstruction)
  return result


def _global_norm(grads) -> jax.Array:
  leaves = jax.tree.leaves(grads)
  return jnp.sqrt(sum(jnp.sum(jnp.square(g)) for g in leaves)) if leaves else jnp.zeros(())


def make_objective(config) -> Objective:
  """config: a ConfigDict with 'name' and the objective's fields."""
  from compzoo.train import adversarial  # imported here: it imports this module
  kinds = {"rate_distortion": RateDistortion, "lossless": Lossless, "gan": adversarial.GAN,
           "wgan_gp": adversarial.WGANGP, "wae": adversarial.WAE}
  settings = dict(config)
  name = settings.pop("name", None)
  if name not in kinds:
    raise UsageError(f"unknown objective {name!r}; known: {', '.join(kinds)}")
  try:
    return kinds[name](**settings)
  except TypeError as e:
    raise UsageError(f"objective {name!r}: bad settings {settings}: {e}") from None
