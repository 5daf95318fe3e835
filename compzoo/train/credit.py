"""Credit assignment through an unrolled recurrence: how gradients flow back through time is a property of
the objective, not of the model.

A recurrent model exposes one step, ``model.step(carry, inputs_t) -> (carry, outputs_t)``, its first carry
``model.init_carry(batch)`` and its per-step inputs and targets ``model.unroll(batch) -> (inputs, targets)``
(pytrees with time as the leading axis). The objective turns them into a pure
``step(params, carry, x_t) -> (carry, loss_t)`` and hands it to a rule:

  ``bptt``      backpropagation through the whole unroll (``jax.lax.scan`` + ``jax.grad``);
  ``tbptt:K``   truncated BPTT: the carry's gradient is cut every K steps (at t = K, 2K, ...), so each
                step's loss reaches back at most to the start of its window of K steps. K >= T is BPTT.

Every rule returns (total loss, per-step losses) and the gradient of the total, which is the sum over
steps of each step's (weighted) loss. The recurrent-decoder method adds SAB, UORO and RTRL as further
rules with the same signature: each sees the same step function and decides how influence is carried.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp

from compzoo.errors import UsageError

StepFn = Callable  # (params, carry, x_t) -> (carry, loss_t): pure, differentiable in params


@dataclasses.dataclass(frozen=True)
class TruncatedBPTT:
  """Reverse mode through windows of ``window`` steps (None: the whole unroll, i.e. BPTT)."""

  window: int | None = None

  def value_and_grad(self, step: StepFn, params, carry, xs):
    def total(params):
      def body(carry, indexed):
        t, x_t = indexed
        if self.window is not None:
          cut = (t > 0) & (t % self.window == 0)
          carry = jax.tree.map(lambda c: jnp.where(cut, jax.lax.stop_gradient(c), c), carry)
        return step(params, carry, x_t)

      steps = jax.tree.leaves(xs)[0].shape[0]
      _, losses = jax.lax.scan(body, carry, (jnp.arange(steps), xs))
      return jnp.sum(losses), losses

    return jax.value_and_grad(total, has_aux=True)(params)


def parse_credit(spec: str):
  """'bptt' or 'tbptt:K' -> a rule with ``value_and_grad(step, params, carry, xs)``."""
  name, _, arg = spec.partition(":")
  if name == "bptt" and not arg:
    return TruncatedBPTT(None)
  if name == "tbptt":
    try:
      window = int(arg)
    except ValueError:
      window = 0
    if window < 1:
      raise UsageError(f"credit {spec!r}: truncated BPTT needs a window of at least 1 step, e.g. 'tbptt:4'")
    return TruncatedBPTT(window)
  raise UsageError(f"unknown credit assignment {spec!r}; use 'bptt' or 'tbptt:K'")
