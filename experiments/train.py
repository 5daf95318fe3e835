"""Trains any method: python -m experiments.train --config=experiments/configs/NAME.py[:variant] --workdir=DIR.

Any config field can be overridden (--config.train.steps=100). Running again with the same workdir resumes.
"""

from absl import app, flags, logging
from ml_collections import config_flags

from experiments import launch

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Config file (experiments/configs/NAME.py[:variant]).", lock_config=True)
flags.DEFINE_string("workdir", None, "Checkpoints, metrics.csv, TensorBoard events and the final export go here.")
flags.DEFINE_bool("progress", True, "Show a progress bar.")
flags.DEFINE_bool("distributed", False, "Multi-host run: call jax.distributed.initialize() first.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  logging.set_verbosity(logging.WARNING)  # orbax logs every file it writes at INFO
  launch.run(lambda: _train(), distributed=FLAGS.distributed)


def _train():
  from compzoo.train.loop import train_and_evaluate
  final = train_and_evaluate(FLAGS.config, FLAGS.workdir, progress=FLAGS.progress)
  print("final: " + ", ".join(f"{k}={v:.4g}" for k, v in sorted(final.items())))


if __name__ == "__main__":
  app.run(main)
