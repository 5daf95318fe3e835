"""Exports: a trained model as shipped and loaded by codecs, with no training code (no orbax, no optax
of ours, no data pipeline).

An export folder (``WORKDIR/export/`` after a run, or compzoo/weights/<entry>/) holds ``config.json``
(the run's config; ``model`` builds the network), ``params.msgpack`` (the variables decoding needs:
training-only parts such as discriminators are left out) and, for models whose coding tables depend
only on the weights, ``tables.msgpack`` (integer tables built once here, so a receiver never recomputes
them on other hardware). The weights id that every compressed file carries is a BLAKE2 hash of the
params and tables bytes: a file decodes only with the weights and tables that wrote it.

An export may take whole parts of its parameters from another shipped export (``config.json``'s
``shared_params``: {part: relative folder}), so a frozen codec under several task heads ships once.

``load(path)`` also takes a training workdir (its latest orbax checkpoint, read by compzoo/checkpoints.py,
imported only then).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any, Mapping

import jax
from flax import nnx, serialization

from compzoo import models
from compzoo.errors import UsageError

CONFIG_FILE = "config.json"
PARAMS_FILE = "params.msgpack"
TABLES_FILE = "tables.msgpack"
# {weights id (hex): what those weights were}: earlier weights of a shipped entry, so that their files are
# refused by name ("written with the l3c weights shipped from ... to ...") rather than by two hashes.
SUPERSEDED_FILE = "superseded.json"


@dataclasses.dataclass
class Export:
  config: dict  # the whole run config, as plain data
  model: nnx.Module  # built without training-only parts
  weights_id: bytes
  tables: Any = None  # the model's integer coding tables, or None
  retired_ids: tuple = ()  # ids that files of the same weights carried under older coding revisions
  superseded: dict = dataclasses.field(default_factory=dict)  # {id bytes: description} of earlier weights


def params_bytes(model: nnx.Module) -> bytes:
  return serialization.msgpack_serialize(jax.device_get(models.decoding_state(model)))


def tables_bytes(tables) -> bytes:
  return b"" if tables is None else serialization.msgpack_serialize(tables)


def weights_id(params: bytes, tables: bytes = b"", revision: int = 1) -> bytes:
  """What a file names to say which weights decode it. A model whose coding changed without its weights
  (``CODING_REVISION`` > 1: L3C's and PixelCNN's tables since issue #19) hashes its revision in too, so
  files of the old coding are refused by name instead of decoding to garbage."""
  salt = b"" if revision == 1 else b"\0coding-revision-%d" % revision
  return hashlib.blake2b(params + tables + salt, digest_size=16).digest()


def _export(config, model, params: bytes, tables_raw: bytes, tables) -> Export:
  revision = getattr(type(model), "CODING_REVISION", 1)
  retired = tuple(weights_id(params, tables_raw, r) for r in range(1, revision))
  return Export(config, model, weights_id(params, tables_raw, revision), tables, retired)


def coding_tables(model):
  make = getattr(model, "coding_tables", None)
  return None if make is None else make()


def from_model(config: Mapping, model: nnx.Module) -> Export:
  """What exporting ``model`` would write, without writing it (a workdir's latest weights as a codec)."""
  tables = coding_tables(model)
  return _export(_plain(config), model, params_bytes(model), tables_bytes(tables), tables)


def write(directory, config: Mapping, model: nnx.Module) -> Path:
  """Writes config.json, params.msgpack and (if the model has them) tables.msgpack; returns the folder."""
  directory = Path(directory)
  directory.mkdir(parents=True, exist_ok=True)
  (directory / PARAMS_FILE).write_bytes(params_bytes(model))
  tables = coding_tables(model)
  if tables is not None:
    (directory / TABLES_FILE).write_bytes(tables_bytes(tables))
  elif (directory / TABLES_FILE).exists():
    (directory / TABLES_FILE).unlink()
  (directory / CONFIG_FILE).write_text(json.dumps(_plain(config), indent=2, sort_keys=True) + "\n")
  return directory


def is_export(path) -> bool:
  path = Path(path)
  return (path / CONFIG_FILE).is_file() and (path / PARAMS_FILE).is_file()


def read(path) -> Export:
  path = Path(path)
  try:
    config = json.loads((path / CONFIG_FILE).read_text())
  except (OSError, ValueError) as e:
    raise UsageError(f"{path}: unreadable {CONFIG_FILE}: {e}") from None
  if not isinstance(config.get("model"), dict):
    raise UsageError(f"{path}: {CONFIG_FILE} has no 'model' section")
  # Built abstractly (shapes only): every value comes from the file, so running the initialisers, one
  # small compiled program per parameter shape, would only cost seconds.
  try:
    params = (path / PARAMS_FILE).read_bytes()
  except OSError as e:
    raise UsageError(f"{path}: unreadable {PARAMS_FILE}: {e.strerror}") from None
  model = nnx.eval_shape(lambda: models.build(config["model"], training=False))
  state = nnx.state(model)
  try:
    restored = serialization.msgpack_restore(params)
    for part, folder in config.get("shared_params", {}).items():
      restored[part] = serialization.msgpack_restore((path / folder / PARAMS_FILE).read_bytes())
    _check_shapes(nnx.to_pure_dict(state), restored)
    nnx.replace_by_pure_dict(state, restored)
  except Exception as e:  # a params file that does not fit its own config
    raise UsageError(f"{path}: weights do not match the model in {CONFIG_FILE}: {e}") from None
  nnx.update(model, state)
  tables_path = path / TABLES_FILE
  raw_tables = tables_path.read_bytes() if tables_path.is_file() else b""
  tables = serialization.msgpack_restore(raw_tables) if raw_tables else None
  export = _export(config, model, params, raw_tables, tables)
  export.superseded = read_superseded(path)
  return export


def read_superseded(path) -> dict[bytes, str]:
  """The export's SUPERSEDED_FILE as {id bytes: description}; {} when it has none."""
  file = Path(path) / SUPERSEDED_FILE
  if not file.is_file():
    return {}
  try:
    return {bytes.fromhex(key): str(value) for key, value in json.loads(file.read_text()).items()}
  except (OSError, ValueError, AttributeError) as e:
    raise UsageError(f"{file}: unreadable ({e})") from None


def _check_shapes(expected, restored, where: str = "") -> None:
  """Every variable the model has, at its shape: the file must fill the abstract model completely."""
  if isinstance(expected, Mapping):
    if not isinstance(restored, Mapping) or set(map(str, expected)) != set(map(str, restored)):
      have = sorted(map(str, restored)) if isinstance(restored, Mapping) else type(restored).__name__
      raise ValueError(f"{where or 'the model'} has {sorted(map(str, expected))}, the file {have}")
    restored = {str(k): v for k, v in restored.items()}
    for key, value in expected.items():
      _check_shapes(value, restored[str(key)], f"{where}/{key}")
  elif tuple(expected.shape) != tuple(getattr(restored, "shape", ())):
    raise ValueError(f"{where} is {tuple(expected.shape)} in the model, {getattr(restored, 'shape', '?')} in the file")


def load(path) -> Export:
  """An export folder, or a training workdir's latest checkpoint (as it would be exported)."""
  if is_export(path):
    return read(path)
  config, model = _restore_workdir(path)
  models.strip_training_parts(model)
  return from_model(config, model)


def load_model(path) -> nnx.Module:
  """The model of an export, or of a workdir's latest checkpoint with its training-only parts (a warm
  start of a GAN keeps its discriminator)."""
  return read(path).model if is_export(path) else _restore_workdir(path)[1]


def _restore_workdir(path):
  if not (Path(path) / "checkpoints").is_dir():
    raise UsageError(f"{path}: neither an export ({CONFIG_FILE} + {PARAMS_FILE}) nor a training workdir "
                     "(checkpoints/)")
  from compzoo.checkpoints import restore_latest  # orbax: only a workdir needs it
  return restore_latest(path)


def _plain(config: Mapping) -> dict:
  """A ConfigDict or dict -> plain JSON data."""
  to_dict = getattr(config, "to_dict", None)
  return json.loads(json.dumps(to_dict() if to_dict else dict(config), default=str))
