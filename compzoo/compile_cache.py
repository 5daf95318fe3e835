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


def enable(directory: str | os.PathLike | None = None, *, bounded: bool = True,
           min_compile_seconds: float = MIN_COMPILE_SECONDS) -> Path | None:
  """Turns the cache on (``directory``, else as the module docstring says) or off (``"off"``); -> the folder
  in use, or None. It sets environment variables (JAX reads them when it starts, and the processes this
  one starts inherit them) and updates JAX's config only if JAX is already imported, so commands that never
  compile stay light. A process keeps the first cache it compiled with.

  ``bounded=False`` drops the size bound and with it the lock and the eviction, which scans the whole folder
  on every write (the test suite's choice: thousands of entries, one run). Unlocked, a process reading an
  entry another one is still writing gets a warning and compiles the program itself: never a wrong one,
  since a cut entry fails to decompress."""
  chosen = str(directory) if directory is not None else os.environ.get(ENV, "")
  if chosen.strip().lower() in OFF and chosen.strip():
    _apply({"jax_enable_compilation_cache": False}, override=True)
    return None
  user = os.environ.get("JAX_COMPILATION_CACHE_DIR", "")
  path = Path(chosen or user or default_dir()).expanduser()
  try:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
  except OSError as e:
    from compzoo.errors import UsageError
    raise UsageError(f"cannot use {path} as the compilation cache ({e.strerror}); set {ENV}=DIR or off") from None
  _apply({"jax_enable_compilation_cache": True, "jax_compilation_cache_dir": str(path),
          "jax_compilation_cache_max_size": MAX_BYTES if bounded else -1,
          "jax_persistent_cache_min_compile_time_secs": min_compile_seconds,
          "jax_persistent_cache_min_entry_size_bytes": -1}, override=directory is not None)
  return path


def _apply(settings: dict, override: bool) -> None:
  """As environment variables, which JAX reads when it starts and the processes this one starts inherit,
  and through JAX's config if it is already imported. Values a parent process (the test suite, a
  launcher) or the user set are kept unless ``override``: a child of the suite must not bound, lock and
  scan the suite's unbounded cache (it would look for eviction stamps the suite never writes)."""
  jax = sys.modules.get("jax")  # never imported here: importing JAX is what a light command avoids
  for name, value in settings.items():
    variable = name.upper()
    if not override and name != "jax_compilation_cache_dir" and variable in os.environ:
      continue
    os.environ[variable] = str(value).lower() if isinstance(value, bool) else str(value)
    if jax is not None:
      jax.config.update(name, value)
