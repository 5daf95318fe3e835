"""Peak memory and time of one codec on one large image: the bounded-memory check for learned codecs.

    python -m experiments.codec_memory --codec=l3c --height=2000 --width=1500

The image is an embedded photo resized to the requested size (natural content, no download). Prints one
JSON line: seconds to compress and to decompress, bits per sub-pixel, whether decoding was exact, and the
process's peak resident memory (``ru_maxrss``, which includes the interpreter and the libraries).
"""

import json
import resource
import time

import numpy as np
from absl import app, flags
from PIL import Image

from compzoo import zoo
from compzoo.data import embedded_images

_CODEC = flags.DEFINE_string("codec", "l3c", "zoo codec name")
_HEIGHT = flags.DEFINE_integer("height", 2000, "image height")
_WIDTH = flags.DEFINE_integer("width", 1500, "image width")


def main(argv):
  del argv
  photo = next(iter(embedded_images().values()))
  image = np.asarray(Image.fromarray(photo).resize((_WIDTH.value, _HEIGHT.value), Image.Resampling.BICUBIC))
  codec = zoo.make_codec(_CODEC.value)
  start = time.perf_counter()
  payload = codec.compress(image)
  encoded = time.perf_counter()
  decoded = codec.decompress(payload)
  done = time.perf_counter()
  print(json.dumps({
      "codec": codec.name, "shape": list(image.shape), "bpsp": round(8 * len(payload) / image.size, 4),
      "exact": bool(np.array_equal(decoded, image)), "encode_s": round(encoded - start, 2),
      "decode_s": round(done - encoded, 2),
      "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)}))


if __name__ == "__main__":
  app.run(main)
