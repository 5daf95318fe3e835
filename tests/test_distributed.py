"""Multi-process training on the loopback address (jax.distributed, gloo CPU collectives): 2 processes x 2
fake devices train as 1 process x 4 devices does, read disjoint shares of each global batch, resume from
their checkpoints exactly, and stop with a clear error when one of them dies."""

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest
from flax import serialization

from experiments.launch_local import commands

pytestmark = pytest.mark.slow  # make test-fast leaves these out

ROOT = Path(__file__).resolve().parent.parent
STEPS = 8
TIMEOUT_S = 10  # heartbeat timeout of the runs here


def _args(workdir, steps=STEPS, **train):
  options = {**dict(log_every=2, checkpoint_every=4, eval_every=4, log_reads=True, steps=steps), **train}
  return ["--config=experiments/configs/bmshj2018_factorized.py:tiny", f"--workdir={workdir}",
          "--config.data.source=embedded", "--progress=false",
          *(f"--config.train.{key}={value}" for key, value in options.items())]


def _launch(processes, devices, args):
  result = subprocess.run([sys.executable, "-m", "experiments.launch_local", f"--processes={processes}",
                           f"--devices_per_process={devices}", f"--timeout={TIMEOUT_S}", "--", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
  return result.stdout


def _single(devices, args):
  env = dict(os.environ, JAX_PLATFORMS="cpu", JAX_NUM_CPU_DEVICES=str(devices))
  result = subprocess.run([sys.executable, "-m", "experiments.train", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]


def _rows(path):
  with open(path, newline="") as f:
    return list(csv.DictReader(f))


def _params(workdir):
  tree = serialization.msgpack_restore((Path(workdir) / "export" / "params.msgpack").read_bytes())
  return [np.asarray(leaf) for leaf in jax.tree.leaves(tree)]


def _largest_difference(a, b):
  return max(float(np.max(np.abs(x - y))) for x, y in zip(_params(a), _params(b), strict=True))


def _reads(workdir, process):
  return {int(row["step"]): [int(i) for i in row["source_indices"].split()]
          for row in _rows(Path(workdir) / "reads" / f"process-{process}.csv")}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  root = tmp_path_factory.mktemp("distributed")
  _single(4, _args(root / "one"))
  output = _launch(2, 2, _args(root / "two"))
  return root, output


def test_two_processes_train_as_one_process_with_the_same_devices(runs):
  root, output = runs
  one, two = root / "one", root / "two"
  loss_one = [float(row["loss"]) for row in _rows(one / "metrics.csv")]
  loss_two = [float(row["loss"]) for row in _rows(two / "metrics.csv")]
  assert len(loss_one) == STEPS // 2 and loss_two[-1] < loss_two[0]
  np.testing.assert_allclose(loss_two, loss_one, rtol=1e-5)
  worst = _largest_difference(one, two)
  print(f"largest parameter difference, 2 processes x 2 devices against 1 x 4: {worst:.3g}")
  assert worst < 1e-5
  # Process 0 alone writes the run's logs and export; each process logged its own reads.
  assert output.count("final:") == 1 and "[process 0] final:" in output
  assert sorted(p.name for p in (two / "reads").iterdir()) == ["process-0.csv", "process-1.csv"]


def test_each_process_reads_its_own_rows_of_the_one_process_batches(runs):
  root, _ = runs
  alone = _reads(root / "one", 0)
  first, second = _reads(root / "two", 0), _reads(root / "two", 1)
  assert sorted(alone) == sorted(first) == sorted(second) == list(range(1, STEPS + 1))
  for step in alone:
    assert len(first[step]) == len(second[step]) == 2
    assert first[step] + second[step] == alone[step]
    assert not set(first[step]) & set(second[step])
  # Within the first pass over the (32-photo) set no record is read twice, by either process.
  seen = [i for step in sorted(first) for i in first[step] + second[step]][:len(set(sum(alone.values(), [])))]
  assert len(seen) == len(set(seen))


def test_two_processes_resume_after_a_checkpoint_exactly(runs, tmp_path):
  root, _ = runs
  resumed = tmp_path / "resumed"
  _launch(2, 2, _args(resumed) + ["--stop_at=4"])
  assert (resumed / "checkpoints" / "4").is_dir() and not (resumed / "export").exists()
  _launch(2, 2, _args(resumed))
  assert _largest_difference(resumed, root / "two") == 0.0
  assert _rows(resumed / "metrics.csv") and [r["loss"] for r in _rows(resumed / "metrics.csv")] == \
      [r["loss"] for r in _rows(root / "two" / "metrics.csv")]


def _start_and_kill(tmp_path, victim):
  """Starts a long 2-process run, kills ``victim`` once training has logged, -> (survivor's status, its
  stderr, seconds it took to stop)."""
  workdir = tmp_path / "run"
  processes = [subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
               for argv, env in commands(2, 2, _args(workdir, steps=100_000, log_reads=False), timeout=TIMEOUT_S)]
  try:
    deadline = time.monotonic() + 300
    while len((workdir / "metrics.csv").read_text().splitlines() if (workdir / "metrics.csv").exists() else []) < 2:
      assert time.monotonic() < deadline and all(p.poll() is None for p in processes), "the run did not start"
      time.sleep(0.2)
    processes[victim].send_signal(signal.SIGKILL)
    killed = time.monotonic()
    survivor = processes[1 - victim]
    _, stderr = survivor.communicate(timeout=TIMEOUT_S * 4)
    return survivor.returncode, stderr, time.monotonic() - killed
  finally:
    for p in processes:
      if p.poll() is None:
        p.kill()


def test_a_killed_process_stops_the_other_with_a_clear_error(tmp_path):
  status, stderr, seconds = _start_and_kill(tmp_path, victim=1)
  assert status == 1, stderr[-3000:]
  assert "error: process 1 of 2 stopped responding" in stderr and "Traceback" not in stderr
  print(f"process 0 stopped {seconds:.1f} s after process 1 was killed")
  assert seconds < TIMEOUT_S * 2, seconds


def test_a_killed_coordinator_stops_the_other_within_the_timeout(tmp_path):
  # Process 0 hosts JAX's coordination service; JAX itself aborts the others when it is gone.
  status, stderr, seconds = _start_and_kill(tmp_path, victim=0)
  assert status != 0 and "another task died" in stderr, stderr[-3000:]
  assert seconds < TIMEOUT_S * 2, seconds


@pytest.mark.parametrize("failing", [1, 0])
def test_a_failing_process_tells_the_others_why(tmp_path, failing):
  # One process alone cannot read its data: both stop, the other saying why.
  argv_env = commands(2, 2, _args(tmp_path / "run"), timeout=TIMEOUT_S)
  argv_env[failing][0].extend(["--config.data.source=folder", f"--config.data.path={tmp_path / 'missing'}"])
  started = time.monotonic()
  results = [subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for argv, env in argv_env]
  stderrs = [p.communicate(timeout=TIMEOUT_S * 6)[1] for p in results]
  print(f"process {failing} failed; both stopped after {time.monotonic() - started:.1f} s")
  assert [p.returncode for p in results] == [1, 1], stderrs
  assert f"error: no such data folder: {tmp_path / 'missing'}" in stderrs[failing]
  other = stderrs[1 - failing]
  assert f"error: process {failing} of 2 failed: no such data folder" in other and "Traceback" not in other, other[-3000:]


@pytest.mark.parametrize("flags, message", [
    (["--distributed", "--num_processes=2"], "together, or none of them"),
    (["--process_id=0"], "need --distributed"),
    (["--distributed", "--coordinator_address=127.0.0.1:9", "--num_processes=2", "--process_id=2"], "not in 0 ... 1"),
    (["--distributed"], "cannot join a multi-process run"),  # no cluster to discover here
    # Process 1 alone: nobody hosts the coordinator, so it gives up after the timeout with a clear line.
    (["--distributed", "--coordinator_address=127.0.0.1:{port}", "--num_processes=2", "--process_id=1",
      "--distributed_timeout=3"], "did not all connect to the coordinator at 127.0.0.1:"),
])
def test_bad_cluster_flags_and_a_missing_coordinator_are_clear_errors(tmp_path, flags, message):
  from experiments.launch_local import free_port
  flags = [flag.format(port=free_port()) for flag in flags]
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  started = time.monotonic()
  result = subprocess.run([sys.executable, "-m", "experiments.train", *_args(tmp_path / "run"), *flags], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)
  assert result.returncode != 0 and message in result.stderr, result.stderr[-2000:]
  assert "Traceback" not in result.stderr and time.monotonic() - started < 60
