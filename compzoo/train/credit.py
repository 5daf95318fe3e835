"""Credit assignment through an unrolled recurrence: how gradients flow back through time is a property of
the objective, not of the model. Five rules, one signature:

  ``bptt``      backpropagation through time: reverse mode through the whole unroll (``lax.scan`` + grad).
  ``tbptt:K``   truncated BPTT: the gradient of the slots and of the memory is cut every K steps (at
                t = K, 2K, ...), so a loss reaches back at most to the start of its window. K >= T is BPTT.
  ``sab:K``     sparse attentive backtracking (Ke et al., NeurIPS 2018): the slots are cut every K steps as
                in TBPTT, but the memory is not, so credit also flows along the sparse attention edges to
                the kept states and from each of them back through its own window. Needs a model with a
                ``Memory``; with dense attention and K >= T it is BPTT of that model.
  ``uoro``      unbiased online recurrent optimisation (Tallec & Ollivier, 2017): forward mode, the
                influence of the parameters on the state carried as a rank-one product s~ θ~ᵀ, one jvp
                and two vjps per step; unbiased, noisy (its noise vector touches only the written slot).
  ``rtrl``      real-time recurrent learning (Williams & Zipser, 1989): forward mode, the exact influence
                matrix d state / d θ of every slot (and memory entry), updated only where a step writes.
                Memory (slots + entries) × width × parameters floats per record; time per step about
                (width + 1) vector-Jacobian products of the cell plus (reads + entries)·width²·parameters.

A rule sees one record's recurrence (the objective vmaps it over the batch): ``Recurrence`` holds the
model's pure per-step functions, ``update(params, reads, x_t) -> (state, aux)`` and ``readout(params,
state, aux, x_t) -> loss_t``, and the slot layout of compzoo/nn/recurrence.py. ``value_and_grad(recurrence,
params, xs, key)`` returns ((total loss, per-step losses), gradient of the total) for every rule, so
they are interchangeable in the training loop and comparable in tests: RTRL equals BPTT, TBPTT(K >= T)
equals BPTT, SAB with dense attention and no truncation equals BPTT, and the mean of UORO's estimates
converges to BPTT's gradient (tests/test_credit.py).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from compzoo.errors import UsageError
from compzoo.nn.recurrence import Memory, gather_slots, sparse_attention


@dataclasses.dataclass(frozen=True)
class Recurrence:
  """One record's recurrence, as pure functions of the trainable parameters."""

  update: Callable  # (params, reads [R, width], x_t) -> (state [width], aux)
  readout: Callable  # (params, state [width], aux, x_t) -> scalar loss of the step
  reads: np.ndarray  # [T, R] slot indices, -1: zeros
  writes: np.ndarray  # [T]
  slots: int
  width: int
  memory: Memory | None = None

  @property
  def steps(self) -> int:
    return len(self.writes)

  @property
  def entries(self) -> int:
    return self.memory.entries(self.steps) if self.memory else 0

  def init(self):
    """(slots, memory) at t = 0: zeros."""
    return jnp.zeros((self.slots, self.width)), jnp.zeros((self.entries, self.width))

  def indices(self):
    return jnp.arange(self.steps), jnp.asarray(self.reads, jnp.int32), jnp.asarray(self.writes, jnp.int32)

  def attend(self, kept, memory, t):
    """The state a step writes: its update's state plus the attention read of the visible memory."""
    if self.memory is None:
      return kept
    return kept + sparse_attention(kept, memory, self.memory.visible(t, self.entries), self.memory.topk)

  def cell(self, params, reads, memory, t, x_t):
    """The step's new values from what it reads: (state written to the slot, state kept in the memory
    (before the attention read), loss)."""
    kept, aux = self.update(params, reads, x_t)
    state = self.attend(kept, memory, t)
    return state, kept, self.readout(params, state, aux, x_t)

  def step(self, params, carry, t, reads_t, write_t, x_t):
    """The whole step on (slots, memory) -> (new carry, loss)."""
    slots, memory = carry
    state, kept, loss = self.cell(params, gather_slots(slots, reads_t), memory, t, x_t)
    return (slots.at[write_t].set(state), self.keep(memory, t, kept)), loss

  def keep(self, memory, t, value):
    """``memory`` with ``value`` (a state, or its influence or tangent) in step t's entry, if t keeps one."""
    if self.memory is None or not self.entries:
      return memory
    is_kept, entry = self.memory.kept(t)
    return jnp.where(is_kept, memory.at[jnp.minimum(entry, self.entries - 1)].set(value), memory)


@dataclasses.dataclass(frozen=True)
class Backprop:
  """Reverse mode: BPTT (no window), TBPTT (slots and memory cut every ``window`` steps) or SAB (only the
  slots cut: the attention edges to the memory carry credit past the window)."""

  window: int | None = None
  through_memory: bool = False

  def value_and_grad(self, recurrence: Recurrence, params, xs, key=None):
    del key

    def total(params):
      def body(carry, step_inputs):
        t, reads_t, write_t, x_t = step_inputs
        if self.window is not None:
          cut = (t > 0) & (t % self.window == 0)
          slots, memory = carry
          slots = jnp.where(cut, jax.lax.stop_gradient(slots), slots)
          if not self.through_memory:
            memory = jnp.where(cut, jax.lax.stop_gradient(memory), memory)
          carry = slots, memory
        return recurrence.step(params, carry, t, reads_t, write_t, x_t)

      _, losses = jax.lax.scan(body, recurrence.init(), (*recurrence.indices(), xs))
      return jnp.sum(losses), losses

    return jax.value_and_grad(total, has_aux=True)(params)


def _local(recurrence: Recurrence, unravel):
  """The cell as a function of (flat parameters, read states, memory): what the forward rules
  differentiate."""
  return lambda flat, reads, memory, t, x_t: recurrence.cell(unravel(flat), reads, memory, t, x_t)


@dataclasses.dataclass(frozen=True)
class RTRL:
  """Exact forward-mode credit: J[slot] = d slot / d θ for every slot and memory entry.

  A step is taken apart where its Jacobians are cheap: the model's ``update`` is pulled back once per
  state component (plus once for the loss), the parameter-free attention read and the ``readout`` once
  each, so the network's backward pass runs width + 1 times a step, not 2·width + 1."""

  def value_and_grad(self, recurrence: Recurrence, params, xs, key=None):
    del key
    flat, unravel = ravel_pytree(params)
    width, size = recurrence.width, flat.shape[0]
    basis = jnp.eye(width)
    contract = lambda d_in, influence: jnp.tensordot(d_in, influence, axes=2)  # [w, n, w] · [n, w, P]

    def body(carry, step_inputs):
      (slots, memory), (j_slots, j_memory), grad = carry
      t, reads_t, write_t, x_t = step_inputs
      reads = gather_slots(slots, reads_t)
      j_reads = gather_slots(j_slots, reads_t)  # [R, width, P]
      (kept, aux), pull_update = jax.vjp(lambda p, r: recurrence.update(unravel(p), r, x_t), flat, reads)
      zero_aux = jax.tree.map(jnp.zeros_like, aux)
      attend = lambda k, m: recurrence.attend(k, m, t)
      state, pull_attend = jax.vjp(attend, kept, memory)
      loss, pull_readout = jax.vjp(lambda p, s, a: recurrence.readout(unravel(p), s, a, x_t), flat, state, aux)
      # Influence of θ on the kept state, then through the attention read on the written state.
      dk_theta, dk_reads = jax.vmap(lambda e: pull_update((e, zero_aux)))(basis)
      j_kept = dk_theta + contract(dk_reads, j_reads)
      ds_kept, ds_memory = jax.vmap(pull_attend)(basis)
      j_state = ds_kept @ j_kept
      if recurrence.entries:
        j_state = j_state + contract(ds_memory, j_memory)
      # The loss: directly, through the state (and the memory it read), and through the update's features.
      gl_theta, gl_state, gl_aux = pull_readout(jnp.ones_like(loss))
      gl_kept, gl_memory = pull_attend(gl_state)
      gu_theta, gu_reads = pull_update((gl_kept, gl_aux))
      grad = grad + gl_theta + gu_theta + jnp.tensordot(gu_reads, j_reads, axes=2)
      if recurrence.entries:
        grad = grad + jnp.tensordot(gl_memory, j_memory, axes=2)
      j_slots = j_slots.at[write_t].set(j_state)
      j_memory = recurrence.keep(j_memory, t, j_kept)
      carry = ((slots.at[write_t].set(state), recurrence.keep(memory, t, kept)), (j_slots, j_memory), grad)
      return carry, loss

    slots, memory = recurrence.init()
    influence0 = (jnp.zeros(slots.shape + (size,)), jnp.zeros(memory.shape + (size,)))
    (_, _, grad), losses = jax.lax.scan(body, ((slots, memory), influence0, jnp.zeros(size)),
                                        (*recurrence.indices(), xs))
    return (jnp.sum(losses), losses), unravel(grad)


@dataclasses.dataclass(frozen=True)
class UORO:
  """Unbiased rank-one forward credit: d state / d θ ≈ s~ θ~ᵀ (s~ over slots and memory, θ~ over θ)."""

  epsilon: float = 1e-7

  def value_and_grad(self, recurrence: Recurrence, params, xs, key=None):
    if key is None:
      raise UsageError("uoro draws random signs at every step: it needs a key")
    flat, unravel = ravel_pytree(params)
    cell = _local(recurrence, unravel)
    norm = lambda tree: jnp.sqrt(sum(jnp.sum(jnp.square(leaf)) for leaf in jax.tree.leaves(tree)))

    def body(carry, step_inputs):
      (slots, memory), (s_slots, s_memory), theta, grad = carry
      t, reads_t, write_t, x_t, key_t = step_inputs
      reads = gather_slots(slots, reads_t)
      # Forward: how the step's outputs move along the state direction s~.
      (state, kept, loss), (ds_state, ds_kept, ds_loss) = jax.jvp(
          lambda r, m: cell(flat, r, m, t, x_t), (reads, memory), (gather_slots(s_slots, reads_t), s_memory))
      # Reverse: the step's own dependence on θ, for the loss and along random signs on what it writes.
      _, pullback = jax.vjp(lambda p: cell(p, reads, memory, t, x_t), flat)
      is_kept = recurrence.memory.kept(t)[0] if recurrence.memory else False
      signs = jnp.where(jax.random.bernoulli(key_t, 0.5, (2,) + state.shape), 1.0, -1.0)
      signs = signs.at[1].multiply(jnp.where(is_kept, 1.0, 0.0))  # the memory row exists only when kept
      zeros = jnp.zeros_like(state)
      (loss_theta,) = pullback((zeros, zeros, jnp.ones_like(loss)))
      (noise_theta,) = pullback((signs[0], signs[1], jnp.zeros_like(loss)))
      grad = grad + ds_loss * theta + loss_theta
      # New tangents: the propagated direction s~ plus the random signs where the step wrote.
      s_slots = s_slots.at[write_t].set(ds_state)
      s_memory = recurrence.keep(s_memory, t, ds_kept)
      rho0 = jnp.sqrt((norm(theta) + self.epsilon) / (norm((s_slots, s_memory)) + self.epsilon))
      rho1 = jnp.sqrt((norm(noise_theta) + self.epsilon) / (norm(signs) + self.epsilon))
      noise_slots = jnp.zeros_like(s_slots).at[write_t].set(signs[0])
      noise_memory = recurrence.keep(jnp.zeros_like(s_memory), t, signs[1])
      s_slots = rho0 * s_slots + rho1 * noise_slots
      s_memory = rho0 * s_memory + rho1 * noise_memory
      theta = theta / rho0 + noise_theta / rho1
      carry = ((slots.at[write_t].set(state), recurrence.keep(memory, t, kept)), (s_slots, s_memory), theta, grad)
      return carry, loss

    slots, memory = recurrence.init()
    tangents = (jnp.zeros_like(slots), jnp.zeros_like(memory))
    keys = jax.random.split(key, recurrence.steps)
    (_, _, _, grad), losses = jax.lax.scan(
        body, ((slots, memory), tangents, jnp.zeros_like(flat), jnp.zeros_like(flat)),
        (*recurrence.indices(), xs, keys))
    return (jnp.sum(losses), losses), unravel(grad)


RULES = ("bptt", "tbptt:K", "sab:K", "uoro", "rtrl")


def parse_credit(spec: str):
  """'bptt', 'tbptt:K', 'sab:K', 'uoro' or 'rtrl' -> a rule with ``value_and_grad(recurrence, params, xs,
  key)``."""
  name, _, arg = spec.partition(":")
  if name in ("bptt", "uoro", "rtrl") and not arg:
    return {"bptt": Backprop(), "uoro": UORO(), "rtrl": RTRL()}[name]
  if name in ("tbptt", "sab"):
    try:
      window = int(arg)
    except ValueError:
      window = 0
    if window < 1:
      raise UsageError(f"credit {spec!r}: {name} needs a truncation window of at least 1 step, e.g. '{name}:4'")
    return Backprop(window, through_memory=name == "sab")
  raise UsageError(f"unknown credit assignment {spec!r}; use one of {', '.join(RULES)}")


def needs_memory(spec: str) -> bool:
  return spec.partition(":")[0] == "sab"


def forward(recurrence: Recurrence, params, xs) -> tuple[jax.Array, Any]:
  """The per-step losses of one record, no gradient (evaluation)."""
  _, losses = jax.lax.scan(lambda carry, inputs: recurrence.step(params, carry, *inputs), recurrence.init(),
                           (*recurrence.indices(), xs))
  return losses
