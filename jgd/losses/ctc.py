"""Connectionist temporal classification (CTC): a sequence loss without an
alignment.

``ctc_loss`` is the negative log-likelihood of a label sequence summed over
every frame-by-frame alignment of it (with blanks and repeats), computed by
the forward algorithm in log space; ``ctc_loss_with_forward_probs`` also
returns the forward variables.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jgd.base import check_int, check_number
from jgd.losses import _args

__all__ = ["ctc_loss", "ctc_loss_with_forward_probs"]


def _pick(values: jax.Array, index: jax.Array) -> jax.Array:
    """``values[..., index]`` along the last axis, 0 where ``index`` is out of
    range: optax's product with a one-hot matrix, as an exact gather."""
    n = values.shape[-1]
    valid = (index >= 0) & (index < n)
    got = jnp.take_along_axis(values, jnp.clip(index, 0, n - 1), axis=-1)
    return jnp.where(valid, got, 0.0)


def ctc_loss_with_forward_probs(
    logits: Any,
    logit_paddings: Any,
    labels: Any,
    label_paddings: Any,
    *,
    blank_id: int = 0,
    log_epsilon: Any = -1e5,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """CTC loss per sequence and the log forward probabilities.

    ``alpha_blank(t, n)`` and ``alpha_label(t, n)`` are the log-probabilities
    of having emitted the first ``n`` labels after frame ``t`` and being in a
    blank or on label ``n``. Transitions that are impossible get
    ``log_epsilon`` instead of -inf, so every sum stays finite.

    Update (per sequence, log space; lp = log_softmax(logits)):
        phi(0, 0) = 0, phi(0, n > 0) = emit(0, n) = log_epsilon
        phi += [0, logaddexp(phi[1:], emit + log_epsilon * repeat)]
        emit(t) = logaddexp(phi[:-1], emit) + lp(t, labels)
        phi(t) = [phi + lp(t, blank), logaddexp(.., emit + lp(t, blank)
                  + log_epsilon * (1 - repeat))]
        (padded frames keep the previous values)
        loss = -phi(T, label_length) after the last epsilon transition

    Args:
        logits: floating array ``(B, T, K)``: B sequences of T frames over K
            classes, the blank included.
        logit_paddings: array ``(B, T)`` of 0.0 (frame used) and 1.0 (padded
            frame), cast to the logits' dtype.
        labels: integer array ``(B, N)`` of label sequences, right-padded.
        label_paddings: array ``(B, N)`` of 0.0 (label used) and 1.0
            (padding), each row zeros then ones.
        blank_id: the blank's class, an integer in [0, K); default 0; keyword
            only.
        log_epsilon: the log of a probability treated as 0; a number < 0,
            default -1e5; keyword only.

    Returns:
        ``(loss, logalpha_blank, logalpha_label)``: loss ``(B,)``, the two
        others ``(T, B, N + 1)`` and ``(T, B, N)``, in the logits' dtype.

    Raises:
        ValueError: when the ranks or shapes disagree, ``blank_id`` is out of
            range or ``log_epsilon`` is not < 0.
        TypeError: when ``logits`` is not floating point, ``labels`` not
            integer, or ``blank_id`` not an integer.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from jgd import losses
        >>> logits = jnp.zeros((1, 2, 2))     # two frames, blank or class 1
        >>> loss, _, _ = jax.jit(losses.ctc_loss_with_forward_probs)(
        ...     logits, jnp.zeros((1, 2)), jnp.array([[1]]), jnp.zeros((1, 1)))
        >>> loss                              # 3 of the 4 paths: -log(3/4)
        Array([0.2876821], dtype=float32)

    References: A. Graves, S. Fernandez, F. Gomez, J. Schmidhuber,
    "Connectionist Temporal Classification: Labelling Unsegmented Sequence
    Data with Recurrent Neural Networks", 2006, section 4.1 (eqs. 6-8).

    Matches: optax.losses.ctc_loss_with_forward_probs, the same operations
    in the same order, with the label picks as an exact gather instead of a
    product with one-hot matrices (the same values).
    """
    name = "jgd.losses.ctc_loss_with_forward_probs"
    return _ctc(
        name, logits, logit_paddings, labels, label_paddings, blank_id, log_epsilon
    )


def _ctc(
    name: str,
    logits: Any,
    logit_paddings: Any,
    labels: Any,
    label_paddings: Any,
    blank_id: int,
    log_epsilon: Any,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    check_int(name, "blank_id", blank_id)
    check_number(name, "log_epsilon", log_epsilon, hi=0, hi_open=True)
    x = _args.floating(name, "logits", logits)
    _args.rank(name, "logits", x, 3, "(batch, frames, classes)")
    labels = _args.integer(name, "labels", labels)
    _args.rank(name, "labels", labels, 2, "(batch, max label length)")
    pads = _args.like(name, "logit_paddings", logit_paddings, x)
    _args.same_shape(name, "logit_paddings", pads, "logits' first two axes", x[..., 0])
    label_pads = _args.like(name, "label_paddings", label_paddings, x)
    _args.same_shape(name, "labels", labels, "label_paddings", label_pads)
    batch, _, num_classes = x.shape
    if labels.shape[0] != batch:
        raise ValueError(
            f"{name}: labels must have the logits' batch size {batch}; got "
            f"labels {labels.shape} for logits {x.shape}."
        )
    if blank_id >= num_classes:
        raise ValueError(
            f"{name}: blank_id must be an integer in [0, {num_classes}) for "
            f"logits with {num_classes} classes; got {blank_id}."
        )
    dtype = x.dtype
    eps = _args.scalar(log_epsilon, dtype)
    max_label_len = labels.shape[1]

    logprobs = jax.nn.log_softmax(x)
    label_lens = max_label_len - jnp.sum(label_pads, axis=1).astype(jnp.int32)
    # repeat[b, n] = 1 when labels[b, n] == labels[b, n + 1].
    repeat = (labels[:, :-1] == labels[:, 1:]).astype(dtype)
    repeat = jnp.pad(repeat, ((0, 0), (0, 1)))

    logprobs_phi = logprobs[:, :, blank_id : blank_id + 1]  # [B, T, 1]
    logprobs_phi = jnp.transpose(logprobs_phi, (1, 0, 2))  # [T, B, 1]
    logprobs_emit = _pick(
        logprobs,
        jnp.broadcast_to(labels[:, None, :], (batch, x.shape[1], max_label_len)),
    )  # [B, T, N]
    logprobs_emit = jnp.transpose(logprobs_emit, (1, 0, 2))  # [T, B, N]

    phi_init = jnp.ones((batch, max_label_len + 1), dtype) * eps
    phi_init = phi_init.at[:, 0].set(0.0)
    emit_init = jnp.ones((batch, max_label_len), dtype) * eps

    def update_phi_score(phi: jax.Array, added_score: jax.Array) -> jax.Array:
        # Add added_score to phi[:, 1:] in log space.
        return jnp.concatenate(
            [phi[:, :1], jnp.logaddexp(phi[:, 1:], added_score)], axis=-1
        )

    def loop_body(prev: Any, xs: Any) -> Any:
        prev_phi, prev_emit = prev
        # emit-to-phi epsilon transition, except if the next label repeats.
        prev_phi_orig = prev_phi
        prev_phi = update_phi_score(prev_phi, prev_emit + eps * repeat)
        logprob_emit, logprob_phi, pad = xs
        # phi-to-emit transition, and the emit self-loop.
        next_emit = jnp.logaddexp(
            prev_phi[:, :-1] + logprob_emit, prev_emit + logprob_emit
        )
        # blank self-loop; emit-to-phi blank transition only before a repeat.
        next_phi = prev_phi + logprob_phi
        next_phi = update_phi_score(
            next_phi, prev_emit + logprob_phi + eps * (1.0 - repeat)
        )
        pad = pad.reshape((batch, 1))
        next_emit = pad * prev_emit + (1.0 - pad) * next_emit
        next_phi = pad * prev_phi_orig + (1.0 - pad) * next_phi
        return (next_phi, next_emit), (next_phi, next_emit)

    xs = (logprobs_emit, logprobs_phi, pads.transpose((1, 0)))
    _, (logalpha_phi, logalpha_emit) = jax.lax.scan(
        loop_body, (phi_init, emit_init), xs
    )
    # The last row needs the last epsilon transition.
    logalpha_phi_last = update_phi_score(logalpha_phi[-1], logalpha_emit[-1])
    logalpha_phi = logalpha_phi.at[-1].set(logalpha_phi_last)
    per_seq_loss = -_pick(logalpha_phi_last, label_lens[:, None])[:, 0]
    return per_seq_loss, logalpha_phi, logalpha_emit


def ctc_loss(
    logits: Any,
    logit_paddings: Any,
    labels: Any,
    label_paddings: Any,
    *,
    blank_id: int = 0,
    log_epsilon: Any = -1e5,
) -> jax.Array:
    """CTC loss per sequence: -log of the probability of the label sequence,
    summed over its alignments to the frames.

    Update:
        loss = ctc_loss_with_forward_probs(...)[0]

    Args:
        logits, logit_paddings, labels, label_paddings, blank_id, log_epsilon:
            as ``ctc_loss_with_forward_probs``.

    Returns:
        An array ``(B,)`` in the logits' dtype.

    Raises:
        ValueError, TypeError: as ``ctc_loss_with_forward_probs``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from jgd import losses
        >>> jax.jit(losses.ctc_loss)(jnp.zeros((1, 2, 2)), jnp.zeros((1, 2)),
        ...                          jnp.array([[1]]), jnp.zeros((1, 1)))
        Array([0.2876821], dtype=float32)

    References: Graves et al., 2006 (see ``ctc_loss_with_forward_probs``).

    Matches: optax.losses.ctc_loss.
    """
    name = "jgd.losses.ctc_loss"
    return _ctc(
        name, logits, logit_paddings, labels, label_paddings, blank_id, log_epsilon
    )[0]
