"""Checkpoints (orbax, for training and resuming) and exports (one file of weights + config, for shipping).

``WORKDIR/checkpoints/<step>/`` holds three orbax items: the model's variables, the optimizers' states and
the config. ``WORKDIR/export/`` (written when a run finishes) and the shipped weights under
compzoo/weights/ hold ``config.json`` + ``params.msgpack``: small, and loadable with no training code.
``load_model`` reads either and returns the weights id that compressed files carry.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import jax
import ml_collections
import orbax.checkpoint as ocp
from flax import nnx, serialization

from compzoo import models
from compzoo.errors import UsageError

CONFIG_FILE = "config.json"
PARAMS_FILE = "params.msgpack"


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


def export(directory, config: ml_collections.ConfigDict, model: nnx.Module) -> Path:
  """Writes config.json + params.msgpack; returns the directory."""
  directory = Path(directory)
  directory.mkdir(parents=True, exist_ok=True)
  (directory / PARAMS_FILE).write_bytes(_params_bytes(model))
  (directory / CONFIG_FILE).write_text(config.to_json_best_effort(indent=2, sort_keys=True) + "\n")
  return directory


def _params_bytes(model: nnx.Module) -> bytes:
  """The model's variables as msgpack: the content of params.msgpack and what the weights id hashes."""
  return serialization.msgpack_serialize(jax.device_get(nnx.to_pure_dict(nnx.state(model))))


def weights_id(payload: bytes) -> bytes:
  return hashlib.blake2b(payload, digest_size=16).digest()


def load_model(path) -> tuple[ml_collections.ConfigDict, nnx.Module, bytes]:
  """A trained model from an export directory or a training workdir (its latest checkpoint).
  -> (config, model, weights id)."""
  path = Path(path)
  if (path / CONFIG_FILE).is_file() and (path / PARAMS_FILE).is_file():
    config = ml_collections.ConfigDict(json.loads((path / CONFIG_FILE).read_text()))
    model = models.build(config.model)
    payload = (path / PARAMS_FILE).read_bytes()
    state = nnx.state(model)
    try:
      nnx.replace_by_pure_dict(state, serialization.msgpack_restore(payload))
    except Exception as e:  # a params file that does not fit its own config
      raise UsageError(f"{path}: weights do not match the model in {CONFIG_FILE}: {e}") from None
    nnx.update(model, state)
    return config, model, weights_id(payload)
  if (path / "checkpoints").is_dir():
    checkpoints = Checkpoints(path)
    step = checkpoints.latest_step()
    if step is None:
      raise UsageError(f"{path}: no checkpoint has been written yet")
    config = checkpoints.config(step)
    model = models.build(config.model)
    checkpoints.restore(step, model)
    checkpoints.close()
    return config, model, weights_id(_params_bytes(model))
  raise UsageError(f"{path}: neither an export ({CONFIG_FILE} + {PARAMS_FILE}) nor a training workdir (checkpoints/)")
