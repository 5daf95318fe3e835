"""What every experiments/ app does around its work: the persistent compilation cache, optional
multi-process start, and one-line errors."""

import sys

from compzoo import compile_cache
from compzoo.errors import CompzooError, UsageError


def run(work, cluster=None):
  """Runs ``work()``; a ``CompzooError`` becomes one line on stderr and exit status 1. ``cluster``: a
  ``compzoo.train.cluster.ClusterSpec`` to join first (multi-process runs); the process leaves the run in
  step with the others, and tells them when it fails."""
  try:
    compile_cache.enable()  # a resumed or repeated run loads its compiled step instead of compiling it again
  except CompzooError as e:
    _exit_with(e)
  if cluster is None:
    return _run(work)
  from compzoo.train.cluster import Cluster
  try:
    member = Cluster(cluster)
  except CompzooError as e:
    _exit_with(e)
  try:
    work()
  except CompzooError as e:
    member.finish(error=str(e))
    _exit_with(e)
  except BaseException as e:
    member.finish(error=f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
    raise
  member.finish()


def _run(work):
  try:
    work()
  except CompzooError as e:
    _exit_with(e)


def _exit_with(error: CompzooError):
  print(f"error: {error}", file=sys.stderr)
  sys.exit(1)


def positive_ints(flag: str, values) -> list[int]:
  """A list flag's values as sorted distinct positive integers, or a one-line UsageError naming --flag."""
  if not all(str(v).isdigit() and int(v) >= 1 for v in values):
    raise UsageError(f"--{flag} takes positive integers, got {','.join(map(str, values))}")
  return sorted({int(v) for v in values})
