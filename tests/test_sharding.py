"""The sharded train step on 8 fake CPU devices gives the loss and update of the single-device step."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # make test-fast leaves these out

HERE = Path(__file__).resolve().parent


def test_eight_device_step_matches_one_device(tmp_path):
  flags = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
  env = dict(os.environ, XLA_FLAGS=flags, JAX_PLATFORMS="cpu",
             PYTHONPATH=os.pathsep.join([str(HERE), str(HERE.parent), os.environ.get("PYTHONPATH", "")]))
  result = subprocess.run([sys.executable, str(HERE / "sharding_check.py"), str(tmp_path / "run")], env=env,
                          capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
  assert result.stdout.strip().endswith("ok")
