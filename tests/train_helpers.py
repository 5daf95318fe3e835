"""A tiny training config shared by the loop, sharding and codec tests (embedded photos, 8-channel model)."""

import ml_collections


def tiny_config(steps: int = 6, batch_size: int = 2) -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.model = dict(name="bmshj2018_factorized", channels=8, latent=8)
  config.objective = dict(name="rate_distortion", lmbda=0.01, distortion="mse")
  config.data = dict(source="embedded", crop=32, batch_size=batch_size)
  config.optimizer = dict(name="adam", learning_rate=1e-3, schedule="cosine", warmup=2, clip=1.0)
  config.train = dict(steps=steps, seed=0, log_every=2, eval_every=3, checkpoint_every=3, eval_images=2)
  return config
