"""Reference MS-SSIM / SSIM values from TensorFlow for tests/test_metrics.py.

TensorFlow is not a compzoo dependency; run this in a scratch environment:
    python3 -m venv /tmp/tfref && /tmp/tfref/bin/pip install tensorflow-cpu scikit-image
    /tmp/tfref/bin/python experiments/tools/ms_ssim_reference.py
and paste the printed numbers into ``TF_REFERENCE``. The image pairs are built exactly as ``_pair`` there.
"""

import numpy as np
import skimage.data
import tensorflow as tf


def _pair(image):
  h, w = image.shape[:2]
  i, j = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
  noise = ((i * 7 + j * 13) % 31 - 15)[..., None] * np.array([1, 2, 3])
  return image, np.clip(image.astype(np.int64) + noise, 0, 255).astype(np.uint8)


if __name__ == "__main__":
  for name in ("astronaut", "coffee"):
    a, b = _pair(getattr(skimage.data, name)())
    ta, tb = tf.constant(a[None], tf.float32), tf.constant(b[None], tf.float32)
    print(f'"{name}": ({float(tf.image.ssim_multiscale(ta, tb, 255.0)[0])!r}, '
          f'{float(tf.image.ssim(ta, tb, 255.0)[0])!r}),')
