"""PixelCNN: the per-pixel autoregressive baseline that L3C's decode time is compared against.

    python -m experiments.train --config=experiments/configs/pixelcnn.py:tiny --workdir=/tmp/pixelcnn-tiny
    python -m experiments.train --config=experiments/configs/pixelcnn.py:cpu --workdir=runs/pixelcnn

Variants: ``tiny`` (smoke test), ``cpu`` (the shipped checkpoint: 6 masked layers of 32 features, K=5),
``gpu`` (64 features, 8 layers, K=10). Data as for L3C: BSDS500 box-downscaled by 2.
"""

import ml_collections

BSDS500 = "../shared/data/train/bsds500"


def get_config(variant: str = "cpu") -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.model = dict(name="pixelcnn", features=32, layers=6, components=5)
  config.objective = dict(name="lossless", channels=3)
  config.data = dict(source="folder", path=BSDS500, downscale=2, data_dir=".data/tfds", crop=32, batch_size=8)
  config.optimizer = dict(name="adam", learning_rate=1e-3, schedule="cosine", warmup=100, clip=1.0)
  config.train = dict(steps=1500, seed=0, log_every=50, eval_every=500, checkpoint_every=500, eval_images=4)
  if variant == "tiny":
    config.model.update(features=8, layers=3, components=3)
    config.data.update(crop=16, batch_size=4)
    config.optimizer.update(warmup=0)
    config.train.update(steps=100, log_every=10, eval_every=50, checkpoint_every=50)
  elif variant == "gpu":
    config.model.update(features=64, layers=8, components=10)
    config.data.update(crop=64, batch_size=32)
    config.optimizer.update(learning_rate=3e-4)
    config.train.update(steps=200_000, log_every=100, eval_every=5000, checkpoint_every=5000)
  elif variant != "cpu":
    raise ValueError(f"unknown variant {variant!r}; use tiny, cpu or gpu")
  return config
