"""Migrating from optax is one changed import (issue 11).

Each snippet below is optax user code as optax's docs, flax's, equinox's and
common training scripts write it, taking the module ``optax`` as an argument.
The test runs it once with ``optax`` and once with ``jgd`` in its place
(``import jgd as optax``) and compares every number it returns at float32
rtol 1e-6. Both sides run under JAX's default settings (standard dtype
promotion, rank promotion allowed), which user code and flax's and equinox's
layers are written for.

User code that builds its own ``optax.GradientTransformation(init, update)``
and annotates with optax's type names (``Params``, ``OptState``, ...) runs
with jgd's twins of them.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax as real_optax
import pytest

import jgd
from tests.helpers import assert_trees_close

SNIPPETS = {}


def snippet(fn):
    SNIPPETS[fn.__name__] = fn
    return fn


def _data(n=16, d=4, k=3, seed=0):
    kx, kw = jax.random.split(jax.random.key(seed))
    x = jax.random.normal(kx, (n, d))
    labels = jnp.argmax(x @ jax.random.normal(kw, (d, k)), axis=-1)
    return x, labels


# --------------------------------------------------------------------------
# flax nnx: nnx.Optimizer holds the optax transformation.
# --------------------------------------------------------------------------


@snippet
def nnx_mlp_adamw_jit(optax):
    from flax import nnx

    class MLP(nnx.Module):
        def __init__(self, rngs):
            self.linear1 = nnx.Linear(4, 8, rngs=rngs)
            self.linear2 = nnx.Linear(8, 3, rngs=rngs)

        def __call__(self, x):
            return self.linear2(nnx.relu(self.linear1(x)))

    model = MLP(nnx.Rngs(0))
    optimizer = nnx.Optimizer(
        model, optax.adamw(1e-2, weight_decay=1e-2), wrt=nnx.Param
    )

    @nnx.jit
    def train_step(model, optimizer, x, y):
        def loss_fn(model):
            logits = model(x)
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

        loss, grads = nnx.value_and_grad(loss_fn)(model)
        optimizer.update(model, grads)
        return loss

    x, y = _data()
    losses = [train_step(model, optimizer, x, y) for _ in range(3)]
    return losses, nnx.state(model, nnx.Param), optimizer.opt_state


# --------------------------------------------------------------------------
# equinox: the optimizer sees eqx.filter(model, eqx.is_array).
# --------------------------------------------------------------------------


@snippet
def equinox_mlp_adamw(optax):
    import equinox as eqx

    model = eqx.nn.MLP(4, 3, 8, 1, key=jax.random.key(0))
    optim = optax.adamw(3e-3)
    opt_state = optim.init(eqx.filter(model, eqx.is_array))

    def loss(model, x, y):
        logits = jax.vmap(model)(x)
        return optax.softmax_cross_entropy(logits, jax.nn.one_hot(y, 3)).mean()

    @eqx.filter_jit
    def make_step(model, opt_state, x, y):
        loss_value, grads = eqx.filter_value_and_grad(loss)(model, x, y)
        updates, opt_state = optim.update(
            grads, opt_state, eqx.filter(model, eqx.is_array)
        )
        model = eqx.apply_updates(model, updates)
        return model, opt_state, loss_value

    x, y = _data()
    losses = []
    for _ in range(3):
        model, opt_state, loss_value = make_step(model, opt_state, x, y)
        losses.append(loss_value)
    return losses, eqx.filter(model, eqx.is_array), opt_state


# --------------------------------------------------------------------------
# Plain JAX training loops.
# --------------------------------------------------------------------------


def _linear_params():
    w = jax.random.normal(jax.random.key(3), (4, 2))
    return {"w": w, "b": jnp.zeros(2)}


def _fit(optax, optimizer, loss_fn, params, steps=4):
    opt_state = optimizer.init(params)

    @jax.jit
    def step(params, opt_state, x, y):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        return params, opt_state, loss

    x, labels = _data()
    y = jax.nn.one_hot(labels[:, None] % 2, 2)[:, 0]
    losses = []
    for _ in range(steps):
        params, opt_state, loss = step(params, opt_state, x, y)
        losses.append(loss)
    return params, opt_state, losses


def _mse(params, x, y):
    return jnp.mean(jnp.square(x @ params["w"] + params["b"] - y))


@snippet
def jit_loop_clip_adamw_warmup_cosine(optax):
    schedule = optax.warmup_cosine_decay_schedule(
        init_value=0.0, peak_value=1e-2, warmup_steps=2, decay_steps=10, end_value=1e-4
    )
    optimizer = optax.chain(
        optax.clip_by_global_norm(1.0),
        optax.adamw(learning_rate=schedule, weight_decay=1e-4),
    )
    params, opt_state, losses = _fit(optax, optimizer, _mse, _linear_params())
    return params, opt_state, losses, optax.tree.get(opt_state, "nu")


@snippet
def jit_loop_masked_weight_decay(optax):
    def decay_mask(params):
        return jax.tree.map(lambda p: p.ndim > 1, params)

    optimizer = optax.adamw(1e-2, weight_decay=0.1, mask=decay_mask)
    return _fit(optax, optimizer, _mse, _linear_params())


@snippet
def jit_loop_custom_recipe(optax):
    schedule = optax.exponential_decay(
        init_value=1e-2, transition_steps=2, decay_rate=0.5, staircase=True
    )
    optimizer = optax.chain(
        optax.scale_by_adam(b1=0.9, b2=0.99),
        optax.add_decayed_weights(1e-4),
        optax.scale_by_learning_rate(schedule),
    )

    def loss_fn(params, x, y):
        logits = x @ params["w"] + params["b"]
        return optax.sigmoid_binary_cross_entropy(logits, y).mean()

    return _fit(optax, optimizer, loss_fn, _linear_params())


@snippet
def jit_loop_freeze_with_masked_set_to_zero(optax):
    frozen = {"w": False, "b": True}
    schedule = optax.linear_schedule(init_value=0.1, end_value=0.01, transition_steps=3)
    optimizer = optax.chain(
        optax.masked(optax.set_to_zero(), frozen),
        optax.sgd(learning_rate=schedule, momentum=0.9, nesterov=True),
    )
    params, _, losses = _fit(optax, optimizer, _mse, _linear_params())
    assert (params["b"] == 0).all()
    return params, losses


@snippet
def jit_loop_adafactor_and_params_ema(optax):
    optimizer = optax.adafactor(learning_rate=1e-2)
    ema = optax.ema(decay=0.9)
    params = _linear_params()
    ema_state = ema.init(params)
    params, _, losses = _fit(optax, optimizer, _mse, params)
    ema_params, ema_state = ema.update(params, ema_state)
    return params, losses, ema_params, ema_state


# --------------------------------------------------------------------------
# Schedules, losses and tree utilities by their top-level names.
# --------------------------------------------------------------------------


@snippet
def schedules_top_level(optax):
    warmup = optax.linear_schedule(init_value=0.0, end_value=1e-3, transition_steps=5)
    cosine = optax.cosine_decay_schedule(init_value=1e-3, decay_steps=20, alpha=0.1)
    schedules = [
        optax.warmup_cosine_decay_schedule(0.0, 1.0, 5, 30, end_value=0.1),
        optax.join_schedules(schedules=[warmup, cosine], boundaries=[5]),
        optax.exponential_decay(1.0, 4, 0.8, transition_begin=2, end_value=0.3),
        optax.piecewise_constant_schedule(1.0, {5: 0.5, 15: 0.1}),
        optax.polynomial_schedule(1.0, 0.0, power=2, transition_steps=20),
        optax.warmup_exponential_decay_schedule(0.0, 1.0, 3, 5, 0.5),
        optax.cosine_onecycle_schedule(transition_steps=30, peak_value=1.0),
        optax.sgdr_schedule(
            [
                {
                    "init_value": 0.0,
                    "peak_value": 1.0,
                    "warmup_steps": 2,
                    "decay_steps": 10,
                }
            ]
            * 2
        ),
        optax.constant_schedule(0.5),
        optax.schedules.linear_onecycle_schedule(30, 1.0),
    ]
    steps = jnp.array([0, 1, 4, 5, 9, 17, 29])
    return jax.jit(jax.vmap(lambda t: [s(t) for s in schedules]))(steps)


@snippet
def losses_top_level(optax):
    @jax.jit
    def losses(logits, labels):
        one_hot = jax.nn.one_hot(labels, 5)
        pred, target = logits[:, 0], logits[:, 1]
        return [
            optax.softmax_cross_entropy_with_integer_labels(logits, labels),
            optax.softmax_cross_entropy(logits, optax.smooth_labels(one_hot, 0.1)),
            optax.l2_loss(pred, target),
            optax.squared_error(pred, target),
            optax.huber_loss(pred, target, delta=1.0),
            optax.sigmoid_binary_cross_entropy(pred, (target > 0).astype(jnp.float32)),
            optax.losses.sigmoid_focal_loss(
                pred, (target > 0).astype(jnp.float32), gamma=2.0
            ),
            optax.hinge_loss(pred, jnp.sign(target)),
            optax.cosine_similarity(logits, one_hot),
            optax.kl_divergence(jax.nn.log_softmax(logits), jax.nn.softmax(logits.T).T),
        ]

    logits = jax.random.normal(jax.random.key(4), (6, 5))
    return losses(logits, jnp.array([0, 3, 1, 4, 2, 2]))


@snippet
def tree_utilities(optax):
    @jax.jit
    def metrics(grads, params):
        return {
            "grad_norm": optax.global_norm(grads),
            "param_norm": optax.tree.norm(params),
            "l1": optax.tree.norm(grads, ord=1),
            "sq": optax.tree.norm(grads, squared=True),
            "dot": optax.tree.vdot(grads, params),
            "sum": optax.tree.sum(grads),
            "max": optax.tree.max(grads),
            "step": optax.tree.add_scale(params, -0.1, grads),
            "half": optax.tree.scale(0.5, optax.tree.sub(params, grads)),
            "bf16": optax.tree.cast(grads, jnp.bfloat16),
        }

    grads = {"w": jnp.arange(6.0).reshape(2, 3) - 2.5, "b": jnp.array([1.0, -2.0])}
    params = optax.tree.ones_like(grads)
    return metrics(grads, params), optax.tree.size(grads)


# --------------------------------------------------------------------------
# Line searches and L-BFGS as optax's docs run them.
# --------------------------------------------------------------------------


def _rosenbrock(x):
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


@snippet
def lbfgs_loop_from_docs(optax):
    def run_opt(init_params, fun, opt, max_iter, tol):
        value_and_grad_fun = optax.value_and_grad_from_state(fun)

        def step(carry):
            params, state = carry
            value, grad = value_and_grad_fun(params, state=state)
            updates, state = opt.update(
                grad, state, params, value=value, grad=grad, value_fn=fun
            )
            params = optax.apply_updates(params, updates)
            return params, state

        def continuing_criterion(carry):
            _, state = carry
            iter_num = optax.tree.get(state, "count")
            grad = optax.tree.get(state, "grad")
            err = optax.tree.norm(grad)
            return (iter_num == 0) | ((iter_num < max_iter) & (err >= tol))

        init_carry = (init_params, opt.init(init_params))
        return jax.lax.while_loop(continuing_criterion, step, init_carry)

    params = jnp.array([-1.2, 1.0, 0.5])
    final_params, final_state = jax.jit(
        functools.partial(run_opt, fun=_rosenbrock, opt=optax.lbfgs()),
        static_argnames=("max_iter",),
    )(params, max_iter=8, tol=1e-3)
    return final_params, optax.tree.get(final_state, "count"), _rosenbrock(final_params)


@snippet
def backtracking_linesearch_from_docs(optax):
    def fn(x):
        return jnp.sum(x**2) + 0.5 * jnp.sum(jnp.sin(3 * x))

    solver = optax.chain(
        optax.sgd(learning_rate=1.0),
        optax.scale_by_backtracking_linesearch(max_backtracking_steps=15),
    )

    @jax.jit
    def step(params, opt_state):
        value, grad = jax.value_and_grad(fn)(params)
        updates, opt_state = solver.update(
            grad, opt_state, params, value=value, grad=grad, value_fn=fn
        )
        return optax.apply_updates(params, updates), opt_state, value

    params = jnp.array([1.0, 2.0, 3.0])
    opt_state = solver.init(params)
    values = []
    for _ in range(3):
        params, opt_state, value = step(params, opt_state)
        values.append(value)
    return params, values


# --------------------------------------------------------------------------
# optax.contrib.
# --------------------------------------------------------------------------


@snippet
def contrib_schedule_free_adamw(optax):
    optimizer = optax.contrib.schedule_free_adamw(
        learning_rate=1e-2, warmup_steps=2, weight_decay=1e-3
    )
    params, opt_state, losses = _fit(optax, optimizer, _mse, _linear_params())
    eval_params = optax.contrib.schedule_free_eval_params(opt_state, params)
    return params, eval_params, losses


# --------------------------------------------------------------------------
# Combinators: partitions, accumulation, injected hyperparameters, guards.
# --------------------------------------------------------------------------


def _mlp_params():
    """A flax linen-style params dict (``model.init(...)["params"]``)."""
    k0, k1 = jax.random.split(jax.random.key(5))
    return {
        "Dense_0": {"kernel": jax.random.normal(k0, (4, 8)), "bias": jnp.zeros(8)},
        "Dense_1": {"kernel": jax.random.normal(k1, (8, 3)), "bias": jnp.zeros(3)},
    }


def _mlp_loss(params, x, labels):
    h = jax.nn.relu(x @ params["Dense_0"]["kernel"] + params["Dense_0"]["bias"])
    logits = h @ params["Dense_1"]["kernel"] + params["Dense_1"]["bias"]
    return jnp.mean(
        jax.vmap(lambda lg, y: jax.nn.logsumexp(lg) - lg[y])(logits, labels)
    )


@snippet
def multi_transform_label_fn_on_flax_params(optax):
    def map_nested_fn(fn):
        """Recursively apply `fn` to key-value pairs of a nested dict."""

        def map_fn(nested_dict):
            return {
                k: (map_fn(v) if isinstance(v, dict) else fn(k, v))
                for k, v in nested_dict.items()
            }

        return map_fn

    label_fn = map_nested_fn(lambda k, _: k)
    tx = optax.chain(
        optax.clip_by_global_norm(1.0),
        optax.multi_transform(
            {"kernel": optax.adamw(1e-2, weight_decay=1e-3), "bias": optax.sgd(1e-2)},
            label_fn,
        ),
    )
    params = _mlp_params()
    opt_state = tx.init(params)

    @jax.jit
    def step(params, opt_state, x, y):
        loss, grads = jax.value_and_grad(_mlp_loss)(params, x, y)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    x, y = _data()
    losses = []
    for _ in range(3):
        params, opt_state, loss = step(params, opt_state, x, y)
        losses.append(loss)
    return params, opt_state, losses


@snippet
def multi_steps_gradient_accumulation(optax):
    # optax's gradient accumulation guide: k micro-batches per update.
    opt = optax.MultiSteps(optax.adam(1e-2), every_k_schedule=4)
    tx = opt.gradient_transformation()
    params = _linear_params()
    opt_state = tx.init(params)

    @jax.jit
    def step(params, opt_state, x, y):
        loss, grads = jax.value_and_grad(_mse)(params, x, y)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    x, labels = _data()
    y = jax.nn.one_hot(labels % 2, 2)
    losses, updated = [], []
    for i in range(8):
        micro = slice(4 * (i % 4), 4 * (i % 4) + 4)
        params, opt_state, loss = step(params, opt_state, x[micro], y[micro])
        losses.append(loss)
        updated.append(opt.has_updated(opt_state))
    assert [bool(u) for u in updated] == [False, False, False, True] * 2
    return params, opt_state, losses


@snippet
def inject_hyperparams_learning_rate_changed_between_steps(optax):
    optimizer = optax.inject_hyperparams(optax.adam)(learning_rate=1e-2, b1=0.9)
    params = _linear_params()
    opt_state = optimizer.init(params)

    @jax.jit
    def step(params, opt_state, x, y):
        loss, grads = jax.value_and_grad(_mse)(params, x, y)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    x, labels = _data()
    y = jax.nn.one_hot(labels % 2, 2)
    losses = []
    for i in range(4):
        if i == 2:  # a manual decay, as a training loop does at an epoch's end
            opt_state.hyperparams["learning_rate"] = 1e-3
        params, opt_state, loss = step(params, opt_state, x, y)
        losses.append(loss)
    return params, opt_state, losses, opt_state.hyperparams["learning_rate"]


@snippet
def apply_if_finite_skips_a_nan_gradient(optax):
    optimizer = optax.apply_if_finite(optax.adam(1e-2), max_consecutive_errors=2)
    params = _linear_params()
    opt_state = optimizer.init(params)

    @jax.jit
    def step(params, opt_state, x, y, poison):
        grads = jax.grad(_mse)(params, x, y)
        grads = {**grads, "b": grads["b"] * poison}  # a NaN batch, as fp16 gives
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    x, labels = _data()
    y = jax.nn.one_hot(labels % 2, 2)
    history = []
    for poison in [1.0, jnp.nan, 1.0, 1.0]:
        params, opt_state = step(params, opt_state, x, y, poison)
        history.append((params, opt_state.notfinite_count, opt_state.last_finite))
    assert int(opt_state.total_notfinite) == 1
    # optax's four fields by name: jgd's state adds notfinite_leaves
    # (KNOWN_DIFFERENCES in tests/catalogue/accumulate.py).
    fields = ("notfinite_count", "last_finite", "total_notfinite", "inner_state")
    return history, [getattr(opt_state, f) for f in fields]


@snippet
def reduce_on_plateau_after_adam(optax):
    optimizer = optax.chain(
        optax.adam(1.0),  # too large: the loss turns up at step 5
        optax.contrib.reduce_on_plateau(factor=0.5, patience=1),
    )
    params = _linear_params()
    opt_state = optimizer.init(params)

    @jax.jit
    def step(params, opt_state, x, y):
        loss, grads = jax.value_and_grad(_mse)(params, x, y)
        updates, opt_state = optimizer.update(grads, opt_state, params, value=loss)
        return optax.apply_updates(params, updates), opt_state, loss

    x, labels = _data()
    y = jax.nn.one_hot(labels % 2, 2)
    losses, scales = [], []
    for _ in range(6):
        params, opt_state, loss = step(params, opt_state, x, y)
        losses.append(loss)
        scales.append(optax.tree.get(opt_state, "scale"))
    assert float(scales[-1]) < 1.0  # the learning rate was cut
    return params, opt_state, losses, scales


# --------------------------------------------------------------------------
# Transforms built by hand, and optax's type names in annotations.
# --------------------------------------------------------------------------


class _MomentumState(NamedTuple):
    count: jax.Array
    trace: Any


@snippet
def hand_built_gradient_transformation_in_chain(optax):
    def my_momentum(decay: float) -> optax.GradientTransformation:
        def init_fn(params):
            zeros = jax.tree.map(jnp.zeros_like, params)
            return _MomentumState(count=jnp.zeros([], jnp.int32), trace=zeros)

        def update_fn(updates, state, params=None):
            trace = jax.tree.map(lambda g, t: g + decay * t, updates, state.trace)
            return trace, _MomentumState(count=state.count + 1, trace=trace)

        return optax.GradientTransformation(init_fn, update_fn)

    def damp_by_loss() -> optax.GradientTransformationExtraArgs:
        def update_fn(updates, state, params=None, *, value, **extra_args):
            del extra_args
            return jax.tree.map(lambda u: u / (1.0 + value), updates), state

        return optax.GradientTransformationExtraArgs(
            lambda params: optax.EmptyState(), update_fn
        )

    optimizer = optax.chain(
        optax.clip_by_global_norm(1.0),
        my_momentum(0.9),
        damp_by_loss(),
        optax.scale_by_learning_rate(1e-2),
    )
    params = _linear_params()
    opt_state = optimizer.init(params)

    @jax.jit
    def step(params, opt_state, x, y):
        loss, grads = jax.value_and_grad(_mse)(params, x, y)
        updates, opt_state = optimizer.update(grads, opt_state, params, value=loss)
        return optax.apply_updates(params, updates), opt_state, loss

    x, labels = _data()
    y = jax.nn.one_hot(labels % 2, 2)
    losses = []
    for _ in range(3):
        params, opt_state, loss = step(params, opt_state, x, y)
        losses.append(loss)
    return params, opt_state, losses


@snippet
def annotated_with_optax_type_names(optax):
    def make_optimizer(
        learning_rate: optax.ScalarOrSchedule,
    ) -> optax.GradientTransformation:
        return optax.chain(optax.clip(1.0), optax.sgd(learning_rate, momentum=0.9))

    def make_schedule(steps: int) -> optax.Schedule:
        return optax.cosine_decay_schedule(1e-2, steps)

    def train_step(
        optimizer: optax.GradientTransformation,
        params: optax.Params,
        opt_state: optax.OptState,
        grads: optax.Updates,
    ) -> tuple[optax.Params, optax.OptState]:
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    hooks: dict[str, Any] = {
        "init": optax.TransformInitFn,
        "update": optax.TransformUpdateFn,
        "update_extra": optax.TransformUpdateExtraArgsFn,
    }
    # What user code without `from __future__ import annotations` evaluates
    # at definition time (this file has it, so the strings are evaluated here).
    for fn in (make_optimizer, make_schedule, train_step):
        inspect.get_annotations(fn, locals={"optax": optax}, eval_str=True)
    assert all(callable(h) for h in hooks.values())

    optimizer = make_optimizer(make_schedule(10))
    params = _linear_params()
    opt_state = optimizer.init(params)
    x, labels = _data()
    y = jax.nn.one_hot(labels % 2, 2)

    @jax.jit
    def step(params, opt_state):
        return train_step(optimizer, params, opt_state, jax.grad(_mse)(params, x, y))

    for _ in range(3):
        params, opt_state = step(params, opt_state)
    return params, opt_state


# --------------------------------------------------------------------------
# The test.
# --------------------------------------------------------------------------


# optax warns that global_norm is deprecated; user code still calls it.
@pytest.mark.filterwarnings("ignore:optax.global_norm is deprecated")
@pytest.mark.parametrize("name", sorted(SNIPPETS))
def test_snippet_runs_unchanged_with_jgd_and_gives_optax_numbers(name):
    run = SNIPPETS[name]
    with jax.numpy_dtype_promotion("standard"), jax.numpy_rank_promotion("allow"):
        theirs = run(real_optax)
        ours = run(jgd)
    assert_trees_close(jax.tree.leaves(ours), jax.tree.leaves(theirs), 1e-6, name)
