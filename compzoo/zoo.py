"""The zoo: the one place that names codecs. It collects the entries codec modules declare, parses
``NAME[:key=value...]``, checks parameters and builds each codec once, with its canonical name.

Codec modules (``compzoo/codecs/classic.py``, ``compzoo/codecs/learned.py``) import nothing from here, so
there is no import cycle; a learned model from a user's workdir is the entry ``learned``, built with
``weights=DIR`` through the same path as every other codec.
"""

from __future__ import annotations

from typing import Mapping

from compzoo.codecs import classic, learned, patch, signal_classic
from compzoo.codecs.base import Codec
from compzoo.codecs.entries import GUARANTEES, Param, ZooEntry
from compzoo.errors import UsageError

__all__ = ["GUARANTEES", "Param", "ZooEntry", "curve_name", "entries", "expand_sweep", "family", "format_codec_name",
           "group", "get", "make_codec", "parse_codec_name", "sweep_names"]


def _collect(*modules) -> dict[str, ZooEntry]:
  registry = {}
  for module in modules:
    for entry in module.ENTRIES:
      if entry.name in registry:
        raise UsageError(f"zoo entry {entry.name!r} declared twice")
      registry[entry.name] = entry
  return dict(sorted(registry.items()))


_REGISTRY = _collect(classic, learned, patch, signal_classic)


def entries() -> dict[str, ZooEntry]:
  return dict(_REGISTRY)


def get(name: str) -> ZooEntry:
  if name not in _REGISTRY:
    raise UsageError(f"unknown codec {name!r}; `compzoo models` lists them")
  return _REGISTRY[name]


def family(name: str) -> list[ZooEntry]:
  """The entries whose ``family`` is ``name`` (empty when no entry names it)."""
  return [entry for entry in _REGISTRY.values() if entry.family == name]


def group(name: str) -> list[ZooEntry]:
  """The entries a benchmark runs under ``name``: a family (one curve), or a group (a curve each)."""
  return family(name) or [entry for entry in _REGISTRY.values() if entry.group == name]


def parse_codec_name(spec: str) -> tuple[str, dict[str, str]]:
  """'jpeg:quality=75' -> ('jpeg', {'quality': '75'})."""
  name, *settings = spec.strip().split(":")
  params = {}
  for setting in settings:
    key, sep, value = setting.partition("=")
    if not sep or not key or not value:
      raise UsageError(f"bad codec parameter {setting!r} in {spec!r}: expected key=value")
    if key in params:
      raise UsageError(f"parameter {key!r} given twice in {spec!r}")
    params[key] = value
  if not name:
    raise UsageError(f"empty codec name in {spec!r}")
  return name, params


def format_codec_name(name: str, params: Mapping) -> str:
  return ":".join([name] + [f"{k}={v}" for k, v in sorted(params.items())])


def sweep_names(entry: ZooEntry) -> list[str]:
  return [format_codec_name(entry.name, point) for point in entry.sweep] or [entry.name]


def canonical_params(entry: ZooEntry, given: Mapping[str, str]) -> dict:
  unknown = set(given) - set(entry.params)
  if unknown:
    known = ", ".join(entry.params) or "none"
    raise UsageError(f"codec {entry.name!r} has no parameter {sorted(unknown)[0]!r} (parameters: {known})")
  return {key: param.parse(key, given.get(key, param.default)) for key, param in entry.params.items()}


def curve_name(spec: str) -> str:
  """The RD curve a codec name belongs to: its entry's family or name, plus every parameter the entry does
  not sweep that differs from its default ('jpeg-refine:quality=20:rule=uoro' -> 'jpeg-refine:rule=uoro').
  Names outside the zoo are their own curve."""
  name, given = parse_codec_name(spec)
  entry = _REGISTRY.get(name)
  if entry is None:
    return spec
  swept = {key for point in entry.sweep for key in point}
  try:
    params = canonical_params(entry, given)
  except UsageError:  # a name no codec was built from (a hand-written row): its own curve
    return spec
  fixed = {key: value for key, value in params.items()
           if key not in swept and value != entry.params[key].parse(key, entry.params[key].default)}
  return format_codec_name(entry.curve(), fixed)


def expand_sweep(spec: str) -> list[str]:
  """A codec name -> its entry's sweep with the given parameters fixed ('jpeg-refine:rule=uoro' -> one
  name per quality); a name that sets a swept parameter is one point, as given."""
  name, given = parse_codec_name(spec)
  entry = get(name)
  if not entry.sweep or any(key in given for point in entry.sweep for key in point):
    return [spec]
  canonical_params(entry, given)  # a bad parameter fails here, before any work
  return [format_codec_name(entry.name, {**given, **point}) for point in entry.sweep]


def make_codec(spec: str, weights=None) -> Codec:
  """Builds a codec from 'NAME[:key=value...]' (``weights``: a workdir or export, for ``learned`` only);
  its ``name`` spells out every parameter."""
  name, given = parse_codec_name(spec)
  entry = get(name)
  params = canonical_params(entry, given)
  canonical = format_codec_name(entry.name, params)
  if entry.needs_weights:
    if weights is None:
      raise UsageError(f"codec {entry.name!r} needs --weights (a training workdir or an export folder)")
    return entry.build(canonical, weights=weights, **params)
  if weights is not None:
    raise UsageError(f"--weights goes with -m {learned.LEARNED}, not {spec!r}")
  return entry.build(canonical, **params)
