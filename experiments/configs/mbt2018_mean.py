"""mbt2018-mean: the mean-scale hyperprior of Minnen et al. (NeurIPS 2018), MSE-optimised.

    python -m experiments.train --config=experiments/configs/mbt2018_mean.py:tiny --workdir=/tmp/x
    python -m experiments.train --config=experiments/configs/mbt2018_mean.py:cpu --workdir=runs/mbt-q1 \
        --config.objective.lmbda=0.0067

Variants as bmshj2018_factorized.py's, with the same budget (``cpu``: N=M=48, 8 random 96-pixel BSDS500 crops,
Adam 5e-4 with cosine decay, 5,500 steps), so the two compare at equal training cost. The shipped points
(compzoo/weights/mbt2018-mean/qQ) are the ``cpu`` variant at lambda 0.003, 0.0067, 0.025, 0.05 (Q = 1..4),
each trained from scratch on one CPU thread into runs/mbt/qQ and shipped with
``python -m experiments.ship_weights --family=mbt2018-mean --runs=runs/mbt``.
"""

from experiments.configs import presets

VARIANTS = presets.all_variants(presets.SIZES)


def get_config(variant: str = "cpu"):
  (size,) = presets.parse_variant(variant, presets.SIZES)
  channels, latent, crop, batch, lr, warmup, steps = {
      "tiny": (16, 16, 64, 4, 1e-3, 0, 150),
      "cpu": (48, 48, 96, 8, 5e-4, 100, 5500),
      "gpu": (128, 192, 256, 16, 1e-4, 100, 200_000)}[size]
  return presets.config(
      model=dict(name="mbt2018_mean", channels=channels, latent=latent),
      objective=dict(name="rate_distortion", lmbda=0.0067, distortion="mse"),
      data=presets.data("bsds500", crop, batch, downscale=1),
      optimizer=presets.optimizer(lr, warmup=warmup),
      train=presets.train(size, steps))
