"""What the 3D context model saves: the same autoencoder's symbols under the context model and under the
best factorized prior there could be.

    python -m experiments.cpm_ablation --codecs=cpm-low,cpm-mid,cpm-high --images=../shared/data/kodak

For each codec and image: the real file size, and the latent bits under (a) the context model (the rate
the coder achieves, within 1% of the file: tests/test_cpm.py) and (b) a factorized prior fitted to the
symbols of the very images being measured, one categorical per channel: the empirical entropy, which no
learned factorized prior (``prior='factorized'``) can beat on these images. The importance counts cost the
same in both. Prints one JSON line per codec with mean bpp and the share of latent bits saved.

It also times one full pass of the context model over an image's symbol volume (what the encoder runs
once): a decoder that re-ran that pass for every symbol, as a direct port of the official Python decoder
would, needs about that time multiplied by the number of coded symbols (``naive_decode_s``).
"""

import json
import time

import numpy as np
from absl import app, flags

from compzoo import zoo
from compzoo.data import image_set
from compzoo.models import cpm, pad_to_multiple

_CODECS = flags.DEFINE_list("codecs", ["cpm-low", "cpm-mid", "cpm-high"], "zoo entries of the cpm family")
_IMAGES = flags.DEFINE_string("images", "embedded", "image folder, or 'embedded'")
_LIMIT = flags.DEFINE_integer("limit", 0, "use only the first N images (0: all)")


def main(argv):
  del argv
  images = image_set(_IMAGES.value, _LIMIT.value)
  for name in _CODECS.value:
    codec = zoo.make_codec(name)
    model = getattr(codec, "model", None)
    if getattr(model, "prior", None) != "context":
      raise app.UsageError(f"{name} is not a context-model autoencoder (cpm-low, cpm-mid, cpm-high)")
    file_bits, importance_bits, context_bits, pixels, pass_s, naive_s = [], [], [], 0, [], []
    counts = np.zeros((model.channels, model.levels))  # symbol histogram per channel, coded symbols only
    for image in images.values():
      file_bits.append(8 * len(codec.compress(image)))
      output = model(pad_to_multiple(image, cpm.STRIDE)[None].astype(np.float32))
      importance_bits.append(float(output.bits["importance"][0]))
      context_bits.append(float(output.bits["latent"][0]))
      quantized = model.quantize(model.analyze(pad_to_multiple(image, cpm.STRIDE)[None])).symbols
      symbols, coded = np.asarray(quantized["symbols"])[0], model.mask_from_counts(np.asarray(quantized["counts"])[0])
      for channel in range(model.channels):
        counts[channel] += np.bincount(symbols[..., channel][coded[..., channel]], minlength=model.levels)
      pixels += image.shape[0] * image.shape[1]
      volume, flags = np.moveaxis(symbols, -1, 0)[None], np.moveaxis(coded, -1, 0)[None]
      cpm._context_logits(model, volume, flags).block_until_ready()  # compiled before timing
      start = time.perf_counter()
      cpm._context_logits(model, volume, flags).block_until_ready()
      pass_s.append(time.perf_counter() - start)
      naive_s.append(pass_s[-1] * int(coded.sum()))
    probabilities = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    factorized_bits = -(counts * np.log2(np.where(counts > 0, probabilities, 1))).sum()
    print(json.dumps({
        "codec": name, "images": len(images),
        "file_bpp": round(sum(file_bits) / pixels, 4),
        "importance_bpp": round(sum(importance_bits) / pixels, 4),
        "latent_bpp_context_model": round(sum(context_bits) / pixels, 4),
        "latent_bpp_best_factorized": round(factorized_bits / pixels, 4),
        "latent_bits_saved": round(1 - sum(context_bits) / factorized_bits, 4),
        "coded_fraction": round(float(counts.sum()) * cpm.STRIDE**2 / (pixels * model.channels), 4),
        "context_pass_s": round(float(np.mean(pass_s)), 4), "naive_decode_s": round(float(np.mean(naive_s)))}))


if __name__ == "__main__":
  app.run(main)
