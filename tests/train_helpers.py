"""What the training tests share: a tiny config (embedded photos, 8-channel model) and ``run_steps``, the
loop's own compiled step run on one device."""

import ml_collections


def run_steps(model, objective, optimizer, batches, steps, frozen=None):
  """``steps`` steps of the loop's own compiled step on one device (batch ``i`` is ``batches(i)``, key ``i``)
  -> (trained model, metrics per step). ``frozen``: an NNX filter of parameters with no optimizer."""
  import jax  # here, so tests that only need tiny_config do not load the trainer
  from flax import nnx
  from compzoo.train import mesh as mesh_lib
  from compzoo.train.loop import TrainState, compile_step
  state = TrainState(model, objective, ml_collections.ConfigDict(optimizer), steps, frozen)
  graphdef, params = nnx.split(state)
  step = compile_step(objective, graphdef, mesh_lib.make_mesh(jax.devices()[:1]))
  history = []
  for i in range(steps):
    params, step_metrics = step(params, batches(i), jax.random.PRNGKey(i), i)
    history.append(jax.device_get(step_metrics))
  nnx.update(state, params)
  return state.model, history


def tiny_config(steps: int = 6, batch_size: int = 2) -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.model = dict(name="bmshj2018_factorized", channels=8, latent=8)
  config.objective = dict(name="rate_distortion", lmbda=0.01, distortion="mse")
  config.data = dict(source="embedded", crop=32, batch_size=batch_size)
  config.optimizer = dict(name="adam", learning_rate=1e-3, schedule="cosine", warmup=2, clip=1.0)
  config.train = dict(steps=steps, seed=0, log_every=2, eval_every=3, checkpoint_every=3, eval_images=2)
  return config
