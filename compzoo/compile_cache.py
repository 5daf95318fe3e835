"""JAX's persistent compilation cache for every compzoo process: a program compiled once is loaded, not
compiled again, by the next ``compzoo compress``, bench, training run or test process.

Where it lives: ``$COMPZOO_COMPILE_CACHE`` if set (a folder, or ``off``), else a ``JAX_COMPILATION_CACHE_DIR``
the user set, else ``$XDG_CACHE_HOME/compzoo/jax`` (``~/.cache/compzoo/jax``), made readable by its owner
only: JAX runs what it loads from there, so nobody else may write to it. The CLI's
``--compile-cache DIR|off`` overrides all of these for one call.

Why it is safe: JAX keys each entry on the program, its compile options and XLA flags, the backend, the
devices and the jax/jaxlib versions, so a changed program, flag or machine never loads a stale
executable, and files decode to the same bytes with or without the cache (tests/test_compile_cache.py).
Several processes may share the folder: with a size bound, JAX takes a file lock around every read and
write (unbounded, it writes entries in place and a reader could meet half an entry) and evicts the
least recently used entries beyond ``MAX_BYTES``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ENV = "COMPZOO_COMPILE_CACHE"
OFF = ("off", "none", "no", "0", "false")
MAX_BYTES = 4 << 30
# Programs compiled faster than this are not worth a file: reading an entry back costs milliseconds.
MIN_COMPILE_SECONDS = 0.05


def default_dir() -> Path:
  return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "compzoo" / "jax"


def enable(directory: str | os.PathLike | None = None) -> Path | None:
  """Turns the cache on (``directory``, else as the module docstring says) or off (``"off"``); -> the folder
  in use, or None. Before JAX is imported it only sets environment variables (JAX reads them when it
  starts, and so do the processes this one starts), so commands that never compile stay light. A
  process keeps the first cache it compiled with."""
  chosen = str(directory) if directory is not None else os.environ.get(ENV, "")
  if chosen.strip().lower() in OFF and chosen.strip():
    _apply({"jax_enable_compilation_cache": False})
    return None
  user = os.environ.get("JAX_COMPILATION_CACHE_DIR", "")
  path = Path(chosen or user or default_dir()).expanduser()
  try:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
  except OSError as e:
    from compzoo.errors import UsageError
    raise UsageError(f"cannot use {path} as the compilation cache ({e.strerror}); set {ENV}=DIR or off") from None
  _apply({"jax_enable_compilation_cache": True, "jax_compilation_cache_dir": str(path),
          "jax_compilation_cache_max_size": MAX_BYTES,
          "jax_persistent_cache_min_compile_time_secs": MIN_COMPILE_SECONDS,
          "jax_persistent_cache_min_entry_size_bytes": -1})
  return path


def _apply(settings: dict) -> None:
  if "jax" in sys.modules:
    import jax
    for name, value in settings.items():
      jax.config.update(name, value)
  else:
    os.environ.update({name.upper(): str(value).lower() if isinstance(value, bool) else str(value)
                       for name, value in settings.items()})
