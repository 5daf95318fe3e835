"""bmshj2018-factorized: the factorized-prior autoencoder of Ballé et al. (ICLR 2018), MSE-optimised.

    python -m experiments.train --config=experiments/configs/bmshj2018_factorized.py:tiny --workdir=/tmp/x
    python -m experiments.train --config=experiments/configs/bmshj2018_factorized.py:cpu --workdir=runs/bmshj-q2 \
        --config.objective.lmbda=0.0067
    python -m experiments.train --config=experiments/configs/bmshj2018_factorized.py:gpu --workdir=runs/bmshj-gpu

Variants: ``tiny`` (a minute on 2 CPU cores, smoke test), ``cpu`` (the shipped checkpoints: N=M=48, 96-pixel
crops, sized for 2 CPU cores), ``gpu`` (the paper's N=128, M=192 on 256-pixel crops). lambda weighs MSE on the 0-255 scale
(CompressAI's quality ladder 0.0018 ... 0.0483 uses the same scale).
"""

from experiments.configs import presets

VARIANTS = presets.all_variants(presets.SIZES)


def get_config(variant: str = "cpu"):
  (size,) = presets.parse_variant(variant, presets.SIZES)
  channels, latent, crop, batch, lr, warmup, steps = {
      "tiny": (16, 16, 64, 4, 1e-3, 0, 150),
      "cpu": (48, 48, 96, 8, 5e-4, 100, 2500),
      "gpu": (128, 192, 256, 16, 1e-4, 100, 200_000)}[size]
  return presets.config(
      model=dict(name="bmshj2018_factorized", channels=channels, latent=latent),
      objective=dict(name="rate_distortion", lmbda=0.0067, distortion="mse"),
      data=presets.data("bsds500", crop, batch, downscale=1),
      optimizer=presets.optimizer(lr, warmup=warmup),
      train=presets.train(size, steps))
