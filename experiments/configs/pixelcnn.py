"""PixelCNN: the per-pixel autoregressive baseline that L3C's decode time is compared against.

    python -m experiments.train --config=experiments/configs/pixelcnn.py:tiny --workdir=/tmp/pixelcnn-tiny
    python -m experiments.train --config=experiments/configs/pixelcnn.py:cpu --workdir=runs/pixelcnn

Variants: ``tiny`` (smoke test), ``cpu`` (the shipped checkpoint: 6 masked layers of 32 features, K=5),
``gpu`` (64 features, 8 layers, K=10). Data as for L3C: BSDS500 box-downscaled by 2.
"""

from experiments.configs import presets

VARIANTS = presets.all_variants(presets.SIZES)


def get_config(variant: str = "cpu"):
  (size,) = presets.parse_variant(variant, presets.SIZES)
  features, layers, components, crop, batch, lr, warmup, steps = {
      "tiny": (8, 3, 3, 16, 4, 1e-3, 0, 100),
      "cpu": (32, 6, 5, 32, 8, 1e-3, 100, 1500),
      "gpu": (64, 8, 10, 64, 32, 3e-4, 100, 200_000)}[size]
  return presets.config(
      model=dict(name="pixelcnn", features=features, layers=layers, components=components),
      objective=dict(name="lossless", channels=3),
      data=presets.data("bsds500", crop, batch, downscale=2),
      optimizer=presets.optimizer(lr, warmup=warmup),
      train=presets.train(size, steps, **({"eval_every": 5000} if size == "gpu" else {})))
