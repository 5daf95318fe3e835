"""What every experiments/ app does around its work: optional multi-host start, and one-line errors."""

import sys

from compzoo.errors import CompzooError


def run(work, distributed: bool = False):
  if distributed:
    from compzoo.train.mesh import initialize_distributed
    initialize_distributed()
  try:
    work()
  except CompzooError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(1)
