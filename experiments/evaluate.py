"""Benchmarks a trained model as a real codec beside zoo codecs:

    python -m experiments.evaluate --workdir=runs/bmshj-q2 --images=../shared/data/kodak \
        --codecs=jpeg,jpeg2000 --out=runs/bmshj-q2/kodak

The model (latest checkpoint of --workdir, or an export folder) compresses every image to bytes and back;
the report has the same columns as `compzoo bench` (bytes, bpp, PSNR, MS-SSIM, times, exactness).
"""

from absl import app, flags, logging

from experiments import launch

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Training workdir or export folder of the model.")
flags.DEFINE_string("images", "embedded", "Image folder, or 'embedded'.")
flags.DEFINE_string("codecs", "", "Zoo codecs to measure beside it; bare lossy names expand to their sweep.")
flags.DEFINE_string("out", None, "Report folder (default WORKDIR/eval).")
flags.DEFINE_integer("limit", 0, "Use only the first N images (0: all).")
flags.DEFINE_integer("crop", 0, "Code only the central NxN crop of each image (0: whole images).")
flags.mark_flags_as_required(["workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  logging.set_verbosity(logging.WARNING)
  launch.run(_evaluate)


def _evaluate():
  from pathlib import Path

  from compzoo import bench, data
  from compzoo.codecs.learned import LearnedCodec

  codec = LearnedCodec.from_path(FLAGS.workdir, name="learned")
  specs = bench.expand_sweeps([spec.strip() for spec in FLAGS.codecs.split(",") if spec.strip()])
  records = bench.run_bench([codec] + specs, data.image_set(FLAGS.images, FLAGS.limit, FLAGS.crop))
  paths = bench.write_reports(records, FLAGS.out or Path(FLAGS.workdir) / "eval")
  print(paths["markdown"].read_text(), end="")


if __name__ == "__main__":
  app.run(main)
