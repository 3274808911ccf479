"""User code written the way the README writes it; ``mypy`` must pass on it.

Checked by ``.ci/run`` (``mypy jgd tests/typing/user_code.py``) and by
``tests/test_typing.py``; it also runs, so the types describe real calls.
"""

import jax
import jax.numpy as jnp

import jgd
import jgd.schedules
import jgd.train

params = {"w": jnp.ones(3), "b": jnp.zeros([])}
grads = jax.tree.map(jnp.ones_like, params)

# Optimizers and chains, as optax writes them.
opt = jgd.adam(1e-3)
opt = jgd.adam(learning_rate=1e-3, b1=0.8, b2=0.99, eps=1e-6, nesterov=True)
tx = jgd.chain(jgd.clip_by_global_norm(1.0), jgd.adamw(1e-3, weight_decay=1e-4))
momentum = jgd.sgd(0.1, momentum=0.9, nesterov=True)

# One step.
state = opt.init(params)
updates, state = opt.update(grads, state, params)
params = jgd.apply_updates(params, updates)

tx_state = tx.init(params)
updates, tx_state = tx.update(grads, tx_state, params)

# A new hyperparameter: the same type back.
faster: jgd.optimizers.Adam = opt.replace(learning_rate=3e-4)

# A schedule is a learning rate.
schedule = jgd.schedules.cosine_decay_schedule(1e-3, 100)
lr: jax.Array = schedule(10)
scheduled = jgd.adam(schedule)
traced = jgd.adam(jnp.asarray(1e-3), b1=jnp.asarray(0.9))


# The compiled training step.
def loss(p: dict[str, jax.Array], batch: tuple[jax.Array, jax.Array]) -> jax.Array:
    x, y = batch
    return jnp.mean((x * p["w"][0] + p["b"] - y) ** 2)


train_state = jgd.train.init(params, opt)
step = jgd.train.make_step(loss)
x = jnp.linspace(-1.0, 1.0, 8)
train_state, metrics = step(train_state, (x, 2.0 * x))
train_state = train_state.replace(opt=train_state.opt.replace(learning_rate=1e-4))


# optax's type names: annotations, and a transform built by hand.
def make_optimizer(learning_rate: jgd.ScalarOrSchedule) -> jgd.GradientTransformation:
    return jgd.chain(jgd.clip_by_global_norm(1.0), jgd.adam(learning_rate))


def make_schedule(steps: int) -> jgd.Schedule:
    return jgd.schedules.warmup_cosine_decay_schedule(0.0, 1e-3, 2, steps)


def double_init(params: jgd.Params) -> jgd.OptState:
    return ()


def double_update(
    updates: jgd.Updates, state: jgd.OptState, params: jgd.Params | None = None
) -> tuple[jgd.Updates, jgd.OptState]:
    return jax.tree.map(lambda g: 2.0 * g, updates), state


init_fn: jgd.TransformInitFn = double_init
update_fn: jgd.TransformUpdateFn = double_update
double = jgd.GradientTransformation(init_fn, update_fn)
custom: jgd.GradientTransformationExtraArgs = jgd.chain(
    double, make_optimizer(make_schedule(10))
)
custom_state: jgd.OptState = custom.init(params)
updates, custom_state = custom.update(grads, custom_state, params)
double_state = jgd.train.init(params, double)
double_state, metrics = step(double_state, (x, 2.0 * x))
