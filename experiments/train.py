"""Trains any method: python -m experiments.train --config=experiments/configs/NAME.py[:variant] --workdir=DIR.

Any config field can be overridden (--config.train.steps=100). Running again with the same workdir resumes.

Several processes (hosts) train one run with ``--distributed``: JAX finds the cluster by itself on SLURM and
TPU pods, or takes ``--coordinator_address``, ``--num_processes`` and ``--process_id`` (every process gets
the same command but its own id). ``python -m experiments.launch_local`` starts such a run on this machine.
"""

from absl import app, flags, logging
from ml_collections import config_flags

from compzoo.errors import UsageError
from experiments import launch

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Config file (experiments/configs/NAME.py[:variant]).", lock_config=True)
flags.DEFINE_string("workdir", None, "Checkpoints, metrics.csv, TensorBoard events and the final export go here.")
flags.DEFINE_bool("progress", True, "Show a progress bar.")
flags.DEFINE_integer("stop_at", None, "Stop after step N with a checkpoint, as a preempted job would; "
                     "running again resumes.")
flags.DEFINE_bool("distributed", False, "Multi-process run: join it through jax.distributed (the cluster is "
                  "discovered unless the three flags below are given).")
flags.DEFINE_string("coordinator_address", None, "host:port of process 0's coordination service.")
flags.DEFINE_integer("num_processes", None, "How many processes the run has.")
flags.DEFINE_integer("process_id", None, "This process's id, 0 ... num_processes - 1.")
flags.DEFINE_integer("distributed_timeout", 100, "Seconds: the wait for every process to connect, and how long "
                     "a process may miss heartbeats before the others stop the run.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  logging.set_verbosity(logging.WARNING)  # orbax logs every file it writes at INFO
  launch.run(_train, cluster=_cluster_spec())


def _cluster_spec():
  explicit = (FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id)
  if not FLAGS.distributed:
    if any(value is not None for value in explicit):
      raise app.UsageError("--coordinator_address, --num_processes and --process_id need --distributed")
    return None
  from compzoo.train.cluster import ClusterSpec
  try:
    return ClusterSpec(*explicit, timeout_s=FLAGS.distributed_timeout)
  except UsageError as e:  # before launch.run: absl's flag error, one line
    raise app.UsageError(str(e)) from None


def _train():
  import jax
  from compzoo.train.loop import train_and_evaluate
  final = train_and_evaluate(FLAGS.config, FLAGS.workdir, stop_at=FLAGS.stop_at, progress=FLAGS.progress)
  if jax.process_index() == 0:
    print("final: " + ", ".join(f"{k}={v:.4g}" for k, v in sorted(final.items())))


if __name__ == "__main__":
  app.run(main)
