"""Starts a multi-process training run on this machine: N processes on the loopback address, each with its
own fake CPU devices, joined through jax.distributed as N hosts would be (CPU collectives over gloo).

    python -m experiments.launch_local --processes=2 --devices_per_process=2 -- \\
        --config=experiments/configs/bmshj2018_factorized.py:tiny --workdir=runs/tiny-2x2

Everything after ``--`` goes to every process of ``experiments.train``, which also gets ``--distributed``, the
coordinator's address, the number of processes and its own id. Their output comes back line by line, each
line marked with its process. When one process fails, the others stop by themselves (compzoo/train/cluster.py);
whatever still runs ``--timeout`` + 30 s later is killed. Exit status 0 only if every process succeeded.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time

from absl import app, flags

from compzoo.errors import UsageError

FLAGS = flags.FLAGS
flags.DEFINE_integer("processes", 2, "How many processes to start.")
flags.DEFINE_integer("devices_per_process", 2, "Fake CPU devices in each process.")
flags.DEFINE_integer("timeout", 30, "Seconds a process may miss heartbeats before the others stop "
                     "(experiments.train --distributed_timeout).")
flags.DEFINE_integer("port", 0, "The coordinator's port on 127.0.0.1 (0: any free one).")


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def commands(processes: int, devices_per_process: int, app_args: list[str], port: int | None = None,
             timeout: int = 30) -> list[tuple[list[str], dict[str, str]]]:
  """(argv, environment) of each process of a local run of experiments.train (tests start them with it)."""
  if processes < 1 or devices_per_process < 1:
    raise UsageError(f"need at least one process and one device, got {processes} x {devices_per_process}")
  port = port or free_port()
  xla_flags = re.sub(r"--xla_force_host_platform_device_count=\S+", "", os.environ.get("XLA_FLAGS", "")).strip()
  env = dict(os.environ, JAX_PLATFORMS="cpu", JAX_NUM_CPU_DEVICES=str(devices_per_process), XLA_FLAGS=xla_flags,
             PYTHONUNBUFFERED="1")
  return [([sys.executable, "-m", "experiments.train", *app_args, "--distributed",
            f"--coordinator_address=127.0.0.1:{port}", f"--num_processes={processes}", f"--process_id={i}",
            f"--distributed_timeout={timeout}"], env) for i in range(processes)]


def _relay(index: int, stream) -> None:
  for line in stream:
    sys.stdout.write(f"[process {index}] {line}")
    sys.stdout.flush()


def describe(returncode: int) -> str:
  return f"killed by signal {-returncode}" if returncode < 0 else f"exit status {returncode}"


def main(argv):
  if FLAGS.processes < 1 or FLAGS.devices_per_process < 1:
    raise app.UsageError("--processes and --devices_per_process must be at least 1")
  started = []
  for argv_i, env in commands(FLAGS.processes, FLAGS.devices_per_process, argv[1:], FLAGS.port or None,
                              FLAGS.timeout):
    process = subprocess.Popen(argv_i, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    threading.Thread(target=_relay, args=(len(started), process.stdout), daemon=True).start()
    started.append(process)
  deadline = None
  while any(p.poll() is None for p in started):
    if deadline is None and any(p.returncode for p in started):
      deadline = time.monotonic() + FLAGS.timeout + 30
    if deadline is not None and time.monotonic() > deadline:
      for p in started:
        if p.poll() is None:
          p.kill()
    time.sleep(0.2)
  for p in started:
    p.wait()
  failed = [(i, p.returncode) for i, p in enumerate(started) if p.returncode]
  if failed:
    print("launch_local: " + "; ".join(f"process {i}: {describe(code)}" for i, code in failed), file=sys.stderr)
    sys.exit(1)


if __name__ == "__main__":
  app.run(main)
