import os
from pathlib import Path

# Test processes (pytest workers and the apps they start) share compiled XLA programs through JAX's
# persistent cache: the same codec or training step is compiled once per suite run, not once per process.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR",
                      str(Path(__file__).resolve().parents[1] / ".pytest_cache" / "jax-compilation"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

import numpy as np
import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
KODAK = Path(os.environ.get("COMPZOO_KODAK", SHARED / "data" / "kodak"))


@pytest.fixture
def rng():
  return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def kodak_dir():
  if not KODAK.is_dir():
    pytest.skip(f"Kodak set not found at {KODAK} (set COMPZOO_KODAK)")
  return KODAK


@pytest.fixture(scope="session")
def astronaut():
  import skimage.data

  return skimage.data.astronaut()
