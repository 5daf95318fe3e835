"""mbt2018-mean: the mean-scale hyperprior of Minnen et al. (NeurIPS 2018), MSE-optimised.

    python -m experiments.train --config=experiments/configs/mbt2018_mean.py:tiny --workdir=/tmp/x
    python -m experiments.train --config=experiments/configs/mbt2018_mean.py:cpu --workdir=runs/mbt-q1 \
        --config.objective.lmbda=0.0067

bmshj2018_factorized.py's variants with the hyperprior as the model, at the same budget (``cpu``: N=M=48, 8 random
96-pixel BSDS500 crops, Adam 5e-4 with cosine decay, 5,500 steps: what bmshj2018's shipped points reached, 2,500
steps resumed to 5,500), so the two compare at equal training cost. The shipped points
(compzoo/weights/mbt2018-mean/qQ) are the ``cpu`` variant at lambda 0.003, 0.0067, 0.025, 0.05 (Q = 1..4),
each trained from scratch on one CPU thread into runs/mbt/qQ and shipped with
``python -m experiments.ship_weights --family=mbt2018-mean --runs=runs/mbt``.
"""

from experiments.configs import bmshj2018_factorized, presets

VARIANTS = bmshj2018_factorized.VARIANTS
CPU_STEPS = 5500


def get_config(variant: str = "cpu"):
  (size,) = presets.parse_variant(variant, presets.SIZES)
  config = bmshj2018_factorized.get_config(variant)
  config.model.name = "mbt2018_mean"
  if size == "cpu":
    config.train.steps = CPU_STEPS
  return config
