"""The error types every layer raises, so callers (and the CLI) need to catch only these."""


class CompzooError(Exception):
  """Base of all errors this package raises on purpose."""


class BitstreamError(CompzooError):
  """A compressed file or stream is corrupt, truncated, foreign, or needs other weights."""


class UsageError(CompzooError):
  """The caller asked for something that cannot exist: unknown codec, bad parameter, bad shape."""
