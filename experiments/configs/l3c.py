"""L3C (Mentzer et al., CVPR 2019): learned lossless compression, and the paper's RGB baselines.

    python -m experiments.train --config=experiments/configs/l3c.py:tiny --workdir=/tmp/l3c-tiny
    python -m experiments.train --config=experiments/configs/l3c.py:cpu --workdir=runs/l3c
    python -m experiments.train --config=experiments/configs/l3c.py:cpu-rgb --workdir=runs/l3c-rgb
    python -m experiments.train --config=experiments/configs/l3c.py:cpu-rgb-shared --workdir=runs/l3c-rgb-shared
    python -m experiments.train --config=experiments/configs/l3c.py:gpu --workdir=runs/l3c-gpu
    # the shipped l3c (and likewise l3c-rgb): the weights shipped before issue #32, continued on this data
    python -m experiments.train --config=experiments/configs/l3c.py:cpu --workdir=runs/l3c-photos \
        --config.train.init_from=OLD_EXPORT --config.optimizer.learning_rate=1e-3 --config.train.steps=5500

Variant = size [-rgb | -rgb-shared]. Sizes: ``tiny`` (a smoke test, a minute on 2 CPU cores), ``cpu`` (the
shipped checkpoints: Cf=32, 4 residual blocks, sized for 2 CPU cores), ``gpu`` (the paper: Cf=64, 8 blocks,
C=5, L=25, K=10, batch 30 of 128-pixel crops). ``-rgb`` replaces the learned auxiliary representations by a
fixed RGB pyramid; ``-rgb-shared`` also shares one predictor across scales.

Data (issue #32): lossless-photos train (47 photographs with no JPEG history), half of the crops darkened by a
factor of 0.15-0.8 (``data.darken``); ``cpu`` learns at 3e-3 from scratch (issue #17's short runs), and the
shipped weights continue at 1e-3. Both won the equal-budget short runs of ``experiments/l3c_recipes.py`` on
lossless-photos val (docs/l3c.md, "L3C on lossless photographs"). Issue #17's recipe, BSDS500 + CamVid, is its row
``mix``.
"""

from experiments.configs import presets

KINDS = {"": dict(auxiliary="learned", shared_predictor=False),
         "rgb": dict(auxiliary="rgb", shared_predictor=False),
         "rgb-shared": dict(auxiliary="rgb", shared_predictor=True)}
VARIANTS = presets.all_variants(presets.SIZES, tuple(KINDS))


def get_config(variant: str = "cpu"):
  size, kind = presets.parse_variant(variant, presets.SIZES, tuple(KINDS))
  features, blocks, components, crop, batch = {"tiny": (8, 1, 3, 32, 4), "cpu": (32, 4, 10, 64, 8),
                                               "gpu": (64, 8, 10, 128, 30)}[size]
  optimizer = {"tiny": presets.optimizer(1e-3, warmup=0), "cpu": presets.optimizer(3e-3),
               "gpu": presets.optimizer(1e-4, schedule="constant", warmup=0)}[size]
  return presets.config(
      model=dict(name="l3c", features=features, blocks=blocks, latent_channels=5, levels=25, components=components,
                 scales=3, sigma=2.0, **KINDS[kind]),
      objective=dict(name="lossless", channels=3),
      data=presets.data("lossless-photos", crop, batch, darken=(0.15, 0.8)),
      optimizer=optimizer,
      train=presets.train(size, {"tiny": 100, "cpu": 2500, "gpu": 300_000}[size],
                          **({"eval_every": 5000} if size == "gpu" else {})))
