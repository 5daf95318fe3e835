"""bmshj2018-factorized: the factorized-prior autoencoder of Ballé et al. (ICLR 2018), MSE-optimised.

    python -m experiments.train --config=experiments/configs/bmshj2018_factorized.py:tiny --workdir=/tmp/x
    python -m experiments.train --config=experiments/configs/bmshj2018_factorized.py:cpu --workdir=runs/bmshj-q2 \
        --config.objective.lmbda=0.0067
    python -m experiments.train --config=experiments/configs/bmshj2018_factorized.py:gpu --workdir=runs/bmshj-gpu

Variants: ``tiny`` (a minute on 2 CPU cores, smoke test), ``cpu`` (the shipped checkpoints: N=M=48, 96-pixel
crops, sized for 2 CPU cores), ``gpu`` (the paper's N=128, M=192 on 256-pixel crops). lambda weighs MSE on the 0-255 scale
(CompressAI's quality ladder 0.0018 ... 0.0483 uses the same scale).
"""

import ml_collections

BSDS500 = "../shared/data/train/bsds500"


def get_config(variant: str = "cpu") -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.model = dict(name="bmshj2018_factorized", channels=48, latent=48)
  config.objective = dict(name="rate_distortion", lmbda=0.0067, distortion="mse")
  config.data = dict(source="folder", path=BSDS500, downscale=1, data_dir=".data/tfds", crop=96, batch_size=8)
  config.optimizer = dict(name="adam", learning_rate=5e-4, schedule="cosine", warmup=100, clip=1.0)
  config.train = dict(steps=2500, seed=0, log_every=50, eval_every=500, checkpoint_every=500, eval_images=4)
  if variant == "tiny":
    config.model.update(channels=16, latent=16)
    config.data.update(crop=64, batch_size=4)
    config.optimizer.update(learning_rate=1e-3, warmup=0)
    config.train.update(steps=150, log_every=10, eval_every=50, checkpoint_every=50)
  elif variant == "gpu":
    config.model.update(channels=128, latent=192)
    config.data.update(crop=256, batch_size=16)
    config.optimizer.update(learning_rate=1e-4)
    config.train.update(steps=200_000, log_every=100, eval_every=2000, checkpoint_every=5000)
  elif variant != "cpu":
    raise ValueError(f"unknown variant {variant!r}; use tiny, cpu or gpu")
  return config
