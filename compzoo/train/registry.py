"""Objectives by name: the one place that imports every objective module, so they need not import each
other. ``make_objective(config)`` builds the one a config's ``objective`` section names."""

from __future__ import annotations

from compzoo.errors import UsageError
from compzoo.train import adversarial, objectives

OBJECTIVES = {
    "rate_distortion": objectives.RateDistortion,
    "lossless": objectives.Lossless,
    "recurrent": objectives.Recurrent,
    "classification": objectives.Classification,
    "segmentation": objectives.Segmentation,
    "joint_task": objectives.TaskRateDistortion,
    "gan": adversarial.GAN,
    "wgan_gp": adversarial.WGANGP,
    "wae": adversarial.WAE,
    "wasserstein_pp": adversarial.WassersteinPlusPlus,
}


def make_objective(config) -> objectives.Objective:
  """config: a mapping with 'name' and the objective's fields."""
  settings = dict(config)
  name = settings.pop("name", None)
  if name not in OBJECTIVES:
    raise UsageError(f"unknown objective {name!r}; known: {', '.join(OBJECTIVES)}")
  try:
    return OBJECTIVES[name](**settings)
  except TypeError as e:
    raise UsageError(f"objective {name!r}: bad settings {settings}: {e}") from None
