"""L3C (Mentzer et al., CVPR 2019): learned lossless compression, and the paper's RGB baselines.

    python -m experiments.train --config=experiments/configs/l3c.py:tiny --workdir=/tmp/l3c-tiny
    python -m experiments.train --config=experiments/configs/l3c.py:cpu --workdir=runs/l3c
    python -m experiments.train --config=experiments/configs/l3c.py:cpu-rgb --workdir=runs/l3c-rgb
    python -m experiments.train --config=experiments/configs/l3c.py:cpu-rgb-shared --workdir=runs/l3c-rgb-shared
    python -m experiments.train --config=experiments/configs/l3c.py:gpu --workdir=runs/l3c-gpu

Variant = size [-rgb | -rgb-shared]. Sizes: ``tiny`` (a smoke test, a minute on 2 CPU cores), ``cpu`` (the
shipped checkpoints: Cf=32, 4 residual blocks, sized for 2 CPU cores), ``gpu`` (the paper: Cf=64, 8 blocks,
C=5, L=25, K=10, batch 30 of 128-pixel crops). ``-rgb`` replaces the learned auxiliary representations by a
fixed RGB pyramid; ``-rgb-shared`` also shares one predictor across scales.

Data: BSDS500 photos are JPEGs; they are box-downscaled by 2 before training (``data.downscale=2``, a
cached TFDS copy), which averages away JPEG block artefacts the model would otherwise learn to predict, as
the L3C authors did by downscaling Open Images.
"""

import ml_collections

BSDS500 = "../shared/data/train/bsds500"
SIZES = ("tiny", "cpu", "gpu")
KINDS = {"": dict(auxiliary="learned", shared_predictor=False),
         "-rgb": dict(auxiliary="rgb", shared_predictor=False),
         "-rgb-shared": dict(auxiliary="rgb", shared_predictor=True)}


def get_config(variant: str = "cpu") -> ml_collections.ConfigDict:
  size, _, kind = variant.partition("-")
  kind = f"-{kind}" if kind else ""
  if size not in SIZES or kind not in KINDS:
    raise ValueError(f"unknown variant {variant!r}; use one of {SIZES}, optionally with -rgb or -rgb-shared")
  config = ml_collections.ConfigDict()
  config.model = dict(name="l3c", features=32, blocks=4, latent_channels=5, levels=25, components=10,
                      scales=3, sigma=2.0, **KINDS[kind])
  config.objective = dict(name="lossless", channels=3)
  config.data = dict(source="folder", path=BSDS500, downscale=2, data_dir=".data/tfds", crop=64, batch_size=8)
  config.optimizer = dict(name="adam", learning_rate=1e-3, schedule="cosine", warmup=100, clip=1.0)
  config.train = dict(steps=2500, seed=0, log_every=50, eval_every=500, checkpoint_every=500, eval_images=4)
  if size == "tiny":
    config.model.update(features=8, blocks=1, components=3)
    config.data.update(crop=32, batch_size=4)
    config.optimizer.update(warmup=0)
    config.train.update(steps=100, log_every=10, eval_every=50, checkpoint_every=50)
  elif size == "gpu":
    config.model.update(features=64, blocks=8)
    config.data.update(crop=128, batch_size=30)
    config.optimizer.update(learning_rate=1e-4, warmup=0, schedule="constant")
    config.train.update(steps=300_000, log_every=100, eval_every=5000, checkpoint_every=5000)
  return config
