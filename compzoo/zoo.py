"""The zoo registry: one record per codec, holding everything needed to build, sweep and load it.

Modules that define codecs register their entries when imported; ``_PROVIDERS`` lists those modules, so
the registry is complete however the package was entered (CLI, bench, tests).
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Callable, Mapping

from compzoo.codecs.base import Codec, format_codec_name, parse_codec_name
from compzoo.errors import UsageError

_PROVIDERS = ("compzoo.codecs.classic", "compzoo.codecs.learned")


@dataclasses.dataclass(frozen=True)
class Param:
  """A codec parameter: its type, default and inclusive range."""

  kind: type
  default: float
  low: float
  high: float

  def parse(self, key: str, raw) -> int | float:
    try:
      value = self.kind(raw)
    except (TypeError, ValueError):
      raise UsageError(f"parameter {key}={raw!r}: expected {self.kind.__name__}") from None
    if not self.low <= value <= self.high:
      raise UsageError(f"parameter {key}={value} outside [{self.low}, {self.high}]")
    return value


@dataclasses.dataclass(frozen=True)
class ZooEntry:
  name: str
  description: str
  lossless: bool
  build: Callable[..., Codec]  # build(**params) -> Codec; the codec's name is canonical
  params: Mapping[str, Param] = dataclasses.field(default_factory=dict)
  sweep: tuple[Mapping[str, float], ...] = ()  # operating points for rate-distortion curves
  checkpoint: str | None = None  # repo-relative path of shipped weights, for learned codecs
  kind: str = "classic"
  family: str = ""  # entries that are the points of one RD curve (one checkpoint each) share a family

  def curve(self) -> str:
    """The RD curve this entry's points belong to: its family, else its own name."""
    return self.family or self.name

  def sweep_names(self) -> list[str]:
    return [format_codec_name(self.name, point) for point in self.sweep] or [self.name]


_REGISTRY: dict[str, ZooEntry] = {}


def register(entry: ZooEntry) -> ZooEntry:
  if entry.name in _REGISTRY:
    raise ValueError(f"zoo entry {entry.name!r} registered twice")
  if ":" in entry.name or "," in entry.name:
    raise ValueError(f"zoo entry name {entry.name!r} may not contain ':' or ','")
  _REGISTRY[entry.name] = entry
  return entry


def entries() -> dict[str, ZooEntry]:
  for module in _PROVIDERS:
    importlib.import_module(module)
  return dict(sorted(_REGISTRY.items()))


def get(name: str) -> ZooEntry:
  registry = entries()
  if name not in registry:
    raise UsageError(f"unknown codec {name!r}; `compzoo models` lists them")
  return registry[name]


def family(name: str) -> list[ZooEntry]:
  """The entries whose ``family`` is ``name`` (empty when no entry names it)."""
  return [entry for entry in entries().values() if entry.family == name]


def canonical_params(entry: ZooEntry, given: Mapping[str, str]) -> dict:
  unknown = set(given) - set(entry.params)
  if unknown:
    known = ", ".join(entry.params) or "none"
    raise UsageError(f"codec {entry.name!r} has no parameter {sorted(unknown)[0]!r} (parameters: {known})")
  return {key: param.parse(key, given.get(key, param.default)) for key, param in entry.params.items()}


def make_codec(spec: str) -> Codec:
  """Builds a codec from 'NAME[:key=value...]'; its ``name`` spells out every parameter."""
  name, given = parse_codec_name(spec)
  entry = get(name)
  params = canonical_params(entry, given)
  codec = entry.build(**params)
  codec.name = format_codec_name(entry.name, params)
  codec.lossless = entry.lossless
  return codec
