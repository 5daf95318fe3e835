"""Training checkpoints: orbax ``CheckpointManager`` folders holding the model's variables, the optimizers'
states and the config, in ``WORKDIR/checkpoints/<step>/``. The loop saves and restores them to resume;
``restore_latest`` reads a workdir's newest weights for codecs and warm starts (compzoo/exports.py calls
it, so only workdirs, never exports, pull in orbax).
"""

from __future__ import annotations

from pathlib import Path

import jax
import ml_collections
import orbax.checkpoint as ocp
from flax import nnx

from compzoo import models
from compzoo.errors import UsageError


def _abstract(tree):
  return jax.tree.map(ocp.utils.to_shape_dtype_struct, tree)


class Checkpoints:
  def __init__(self, workdir, keep: int = 2):
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True, enable_async_checkpointing=False)
    self.manager = ocp.CheckpointManager(Path(workdir).resolve() / "checkpoints", options=options)

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def save(self, step: int, model: nnx.Module, optimizers, config: ml_collections.ConfigDict) -> None:
    self.manager.save(step, args=ocp.args.Composite(
        model=ocp.args.StandardSave(nnx.to_pure_dict(nnx.state(model))),
        optimizers=ocp.args.StandardSave(nnx.to_pure_dict(nnx.state(optimizers))),
        config=ocp.args.JsonSave(config.to_dict())))

  def restore(self, step: int, model: nnx.Module, optimizers=None) -> None:
    """Restores in place into ``model`` (and ``optimizers``), which give shapes, dtypes and shardings."""
    targets = {"model": model} if optimizers is None else {"model": model, "optimizers": optimizers}
    states = {name: nnx.state(target) for name, target in targets.items()}
    args = {name: ocp.args.StandardRestore(_abstract(nnx.to_pure_dict(state))) for name, state in states.items()}
    restored = self.manager.restore(step, args=ocp.args.Composite(**args))
    for name, target in targets.items():
      nnx.replace_by_pure_dict(states[name], restored[name])
      nnx.update(target, states[name])

  def config(self, step: int) -> ml_collections.ConfigDict:
    restored = self.manager.restore(step, args=ocp.args.Composite(config=ocp.args.JsonRestore()))
    return ml_collections.ConfigDict(restored["config"])

  def close(self):
    self.manager.close()


def restore_latest(workdir) -> tuple[ml_collections.ConfigDict, nnx.Module]:
  """-> (config, model) of a workdir's latest checkpoint (training-only parts included)."""
  checkpoints = Checkpoints(workdir)
  try:
    step = checkpoints.latest_step()
    if step is None:
      raise UsageError(f"{workdir}: no checkpoint has been written yet")
    config = checkpoints.config(step)
    model = models.build(config.model)
    checkpoints.restore(step, model)
    return config, model
  finally:
    checkpoints.close()
