"""Parameters by path: freezing (``train.freeze``) and warm starts (``train.init_from``).

A parameter's path is its dotted attribute path in the model (``encoder.down1.kernel``,
``discriminator.scales.0.conv.bias``). ``train.freeze`` lists path prefixes (``encoder``,
``synthesis.layers.0``): those parameters get no gradient and no optimizer state, so they stay bit for
bit as initialised or warm-started. ``train.init_from`` copies every parameter whose path and shape match
from another run or export (an autoencoder into autoencoder + discriminator), and says what it copied
and what it left initialised; ``PREFIX=PATH`` places the source's parameters under ``PREFIX`` (a trained
codec into a task model's ``codec``), and several sources are separated by commas.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import jax
import numpy as np
from flax import nnx

from compzoo import exports
from compzoo.errors import UsageError


def dotted(path) -> str:
  return ".".join(str(part) for part in path)


def param_paths(model: nnx.Module) -> dict[str, jax.Array]:
  """{dotted path: value} of every nnx.Param."""
  flat = nnx.to_flat_state(nnx.state(model, nnx.Param))
  return {dotted(path): variable[...] for path, variable in flat}


def _matches(prefix: str, path: str) -> bool:
  return path == prefix or path.startswith(prefix + ".")


def parse_prefixes(spec) -> list[str]:
  """'encoder, prior' or ['encoder', 'prior'] -> ['encoder', 'prior']."""
  items = spec.split(",") if isinstance(spec, str) else list(spec or ())
  return [item.strip() for item in items if item.strip()]


def frozen_filter(model: nnx.Module, spec):
  """An NNX filter for the parameters under the path prefixes ``spec`` (None when nothing is frozen);
  a prefix that matches no parameter is a usage error, so a typo never trains what was meant to be frozen."""
  prefixes = parse_prefixes(spec)
  if not prefixes:
    return None
  paths = list(param_paths(model))
  for prefix in prefixes:
    if not any(_matches(prefix, path) for path in paths):
      tops = sorted({path.split(".")[0] for path in paths})
      raise UsageError(f"train.freeze: {prefix!r} matches no parameter; top-level groups: {', '.join(tops)}")
  return nnx.All(nnx.Param, lambda path, _: any(_matches(p, dotted(path)) for p in prefixes))


@dataclasses.dataclass
class WarmStart:
  source: str
  copied: list[str]  # paths copied from the source
  initialised: list[str]  # paths the source lacks: left as initialised
  mismatched: list[str]  # paths both have, with other shapes: left as initialised

  def summary(self) -> str:
    return (f"init_from {self.source}: copied {len(self.copied)} parameter arrays, initialised "
            f"{len(self.initialised)} new ({_tops(self.initialised)}), {len(self.mismatched)} of another shape "
            f"({_tops(self.mismatched)})")


def _tops(paths) -> str:
  return ", ".join(sorted({p.split(".")[0] for p in paths})) or "none"


def parse_sources(spec) -> list[tuple[str, str]]:
  """'runs/a', a Path, or 'codec=runs/a, head=runs/b' -> [(prefix, path)] ('' places parameters where they
  were)."""
  sources = []
  for item in parse_prefixes(os.fspath(spec) if isinstance(spec, os.PathLike) else spec):
    prefix, _, path = item.rpartition("=")
    sources.append((prefix.strip(), path.strip()))
  return sources


def warm_start(model: nnx.Module, spec) -> WarmStart:
  """Copies into ``model`` every parameter of the runs or exports in ``spec`` (``[PREFIX=]PATH``, comma-
  separated) whose path (under PREFIX) and shape match."""
  source = {}
  for prefix, path in parse_sources(spec):
    for name, value in param_paths(exports.load_model(path)).items():
      source[f"{prefix}.{name}" if prefix else name] = value
  target = param_paths(model)
  copied = [p for p in target if p in source and source[p].shape == target[p].shape]
  report = WarmStart(str(spec), copied, [p for p in target if p not in source],
                     [p for p in target if p in source and source[p].shape != target[p].shape])
  if not copied:
    raise UsageError(f"train.init_from={spec} shares no parameter (path and shape) with this model")
  flat = nnx.to_flat_state(nnx.state(model, nnx.Param))
  for key, variable in flat:
    name = dotted(key)
    if name in copied:
      variable[...] = np.asarray(source[name])
  nnx.update(model, nnx.from_flat_state(flat))
  return report


def write_report(report: WarmStart, workdir) -> None:
  (Path(workdir) / "init_from.json").write_text(json.dumps(dataclasses.asdict(report), indent=1) + "\n")
