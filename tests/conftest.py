import os
from pathlib import Path

from compzoo import compile_cache

# Test processes (pytest workers and the apps they start) share compiled XLA programs through the same
# persistent cache as the CLI, kept with the suite's other caches: a program is compiled once per suite
# run, not once per process. COMPZOO_COMPILE_CACHE=off measures a suite that compiles everything.
if not os.environ.get(compile_cache.ENV):
  os.environ[compile_cache.ENV] = str(Path(__file__).resolve().parents[1] / ".pytest_cache" / "jax-compilation")
compile_cache.enable()

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
