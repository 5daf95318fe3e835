"""How the five credit rules' gradients compare on the real refinement decoder, at one set of weights:

    python -m experiments.credit_rules --weights=compzoo/weights/jpeg-refine/bptt --out=runs/credit-rules

On one 32×32 crop of an embedded photo (not a benchmark image) through JPEG at ``--quality``: each rule's
gradient against BPTT's (cosine and relative error: RTRL should be BPTT to float precision; TBPTT and SAB
are biased by their windows; one UORO estimate is noisy), and the cosine of the mean of n UORO estimates
against BPTT's for growing n (unbiasedness: it should approach 1). Prints and writes ``credit_rules.json``.
"""

import json
from pathlib import Path

from absl import app, flags

_WEIGHTS = flags.DEFINE_string("weights", "compzoo/weights/jpeg-refine/bptt", "export or workdir of a refine model")
_QUALITY = flags.DEFINE_integer("quality", 20, "JPEG quality of the crop")
_SAMPLES = flags.DEFINE_list("samples", ["1", "10", "100", "1000", "3000"], "UORO estimates averaged")
_CROP = flags.DEFINE_integer("crop", 32, "crop size (a multiple of 8)")
_OUT = flags.DEFINE_string("out", "runs/credit-rules", "output folder")


def main(argv):
  del argv
  import jax
  import jax.numpy as jnp
  import ml_collections
  import numpy as np
  from flax import nnx

  from compzoo import exports, jpeg
  from compzoo.data.images import embedded_images
  from compzoo.train.registry import make_objective

  model = exports.load(_WEIGHTS.value).model
  photo = list(embedded_images().values())[0]
  size = _CROP.value
  top, left = (photo.shape[0] - size) // 2, (photo.shape[1] - size) // 2
  image = np.ascontiguousarray(photo[top:top + size, left:left + size])
  decoded, features = jpeg.degrade(image, _QUALITY.value)
  batch = {"image": image[None], "jpeg": decoded[None], "jpeg_quality": features[None]}

  def gradient(rule, key):
    objective = make_objective(ml_collections.ConfigDict(dict(name="recurrent", credit=rule)))
    _, grads = objective.gradients(model, nnx.Param, batch, key)
    return jnp.concatenate([jnp.ravel(g) for g in jax.tree.leaves(grads)])

  key = jax.random.PRNGKey(0)
  reference = np.asarray(gradient("bptt", key))
  cosine = lambda g: float(g @ reference / (np.linalg.norm(g) * np.linalg.norm(reference)))
  relative = lambda g: float(np.linalg.norm(g - reference) / np.linalg.norm(reference))
  steps = model.unroll(batch).steps
  rules = {}
  for rule in ("rtrl", f"tbptt:{steps}", "tbptt:8", "sab:8", "tbptt:1", "uoro"):
    g = np.asarray(gradient(rule, key))
    rules[rule] = {"cosine": round(cosine(g), 6), "relative_error": float(f"{relative(g):.3g}")}
  uoro = jax.jit(jax.vmap(lambda k: gradient("uoro", k)))
  total, count, curve = np.zeros_like(reference), 0, {}
  for n in sorted(int(s) for s in _SAMPLES.value):
    while count < n:  # in chunks of at most 100 estimates (one compilation per chunk size)
      chunk = min(100, n - count)
      total += np.asarray(uoro(jax.random.split(jax.random.fold_in(key, count), chunk))).sum(axis=0)
      count += chunk
    curve[n] = round(cosine(total / count), 4)
  result = {"weights": _WEIGHTS.value, "quality": _QUALITY.value, "crop": size, "steps": steps,
            "parameters": int(reference.size), "device": jax.devices()[0].device_kind,
            "against_bptt": rules, "uoro_mean_cosine": curve}
  out = Path(_OUT.value)
  out.mkdir(parents=True, exist_ok=True)
  (out / "credit_rules.json").write_text(json.dumps(result, indent=1) + "\n")
  print(json.dumps(result, indent=1))


if __name__ == "__main__":
  app.run(main)
