"""Optimizers from config: optax chains with gradient clipping and a learning-rate schedule."""

from __future__ import annotations

import optax

from compzoo.errors import UsageError


def learning_rate_schedule(config, total_steps: int):
  """config.schedule: 'constant', 'cosine' (to 0 at total_steps) or 'step' (×0.1 at config.decay_at);
  an optional linear warmup of config.warmup steps."""
  base = config.learning_rate
  kind = config.get("schedule", "constant")
  warmup = config.get("warmup", 0)
  if kind == "constant":
    schedule = optax.constant_schedule(base)
  elif kind == "cosine":
    schedule = optax.cosine_decay_schedule(base, max(total_steps - warmup, 1))
  elif kind == "step":
    boundaries = {int(step) - warmup: 0.1 for step in config.get("decay_at", ())}
    schedule = optax.piecewise_constant_schedule(base, boundaries)
  else:
    raise UsageError(f"unknown learning-rate schedule {kind!r}; use constant, cosine or step")
  if warmup:
    schedule = optax.join_schedules([optax.linear_schedule(0.0, base, warmup), schedule], [warmup])
  return schedule


def make_optimizer(config, total_steps: int, group: str = "model") -> optax.GradientTransformation:
  """Adam (or config.name 'adamw'/'sgd') with global-norm clipping at config.clip (0: none).
  ``config.group_learning_rates`` may override the learning rate of a parameter group by name."""
  overrides = dict(config.get("group_learning_rates", None) or {})
  if group in overrides:
    config = config.copy_and_resolve_references()
    config.learning_rate = overrides[group]
  schedule = learning_rate_schedule(config, total_steps)
  name = config.get("name", "adam")
  b1, b2 = config.get("b1", 0.9), config.get("b2", 0.999)
  if name == "adam":
    base = optax.adam(schedule, b1=b1, b2=b2)
  elif name == "adamw":
    base = optax.adamw(schedule, b1=b1, b2=b2, weight_decay=config.get("weight_decay", 1e-4))
  elif name == "sgd":
    base = optax.sgd(schedule, momentum=config.get("momentum", 0.9))
  else:
    raise UsageError(f"unknown optimizer {name!r}; use adam, adamw or sgd")
  clip = config.get("clip", 0.0)
  return optax.chain(optax.clip_by_global_norm(clip), base) if clip else base
