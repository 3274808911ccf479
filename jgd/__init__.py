"""jgd: gradient-based optimizers for JAX, as pytree values with optax's protocol.

    state = opt.init(params)
    updates, state = opt.update(grads, state, params)
    params = jgd.apply_updates(params, updates)

Optimizers, building blocks, schedules and the common losses are flat here,
as in optax; ``jgd.schedules``, ``jgd.losses``, ``jgd.models`` and ``jgd.tree``
are namespaces too. The heavy ones (``jgd.train``, ``jgd.contrib``,
``jgd.checkpoint`` on orbax, ``jgd.lab``, ``jgd.bench``, ``jgd.demo``) load on
first use, so ``import jgd`` stays cheap.
"""

import importlib

import jgd.optimizers.adam_family as _o_adam_family
import jgd.optimizers.per_leaf as _o_per_leaf
import jgd.optimizers.quasi_newton as _o_quasi_newton
import jgd.optimizers.sgd_variants as _o_sgd_variants
import jgd.transforms.accumulate as _t_accumulate
import jgd.transforms.adam_family as _t_adam_family
import jgd.transforms.adan_lion_adadelta as _t_adan_lion_adadelta
import jgd.transforms.clipping as _t_clipping
import jgd.transforms.combine as _t_combine
import jgd.transforms.elementwise as _t_elementwise
import jgd.transforms.grouping as _t_grouping
import jgd.transforms.injection as _t_injection
import jgd.transforms.linesearch as _t_linesearch
import jgd.transforms.lookahead_wrapper as _t_lookahead_wrapper
import jgd.transforms.masking as _t_masking
import jgd.transforms.nonfinite as _t_nonfinite
import jgd.transforms.partitioning as _t_partitioning
import jgd.transforms.per_leaf as _t_per_leaf
from jgd import base, losses, models, schedules, tree
from jgd.base import (
    GradientTransformation,
    GradientTransformationExtraArgs,
    OptState,
    Params,
    ScalarOrSchedule,
    Schedule,
    Static,
    Transform,
    TransformInitFn,
    TransformUpdateExtraArgsFn,
    TransformUpdateFn,
    Updates,
    apply_updates,
    chain,
    identity,
)
from jgd.losses import (
    convex_kl_divergence,
    cosine_distance,
    cosine_similarity,
    ctc_loss,
    ctc_loss_with_forward_probs,
    generalized_kl_divergence,
    hinge_loss,
    huber_loss,
    kl_divergence,
    l2_loss,
    log_cosh,
    ntxent,
    safe_softmax_cross_entropy,
    sigmoid_binary_cross_entropy,
    sigmoid_focal_loss,
    smooth_labels,
    softmax_cross_entropy,
    softmax_cross_entropy_with_integer_labels,
    squared_error,
)
from jgd.optimizers import adagrad, adam, adamw, gd, rmsprop, sgd
from jgd.optimizers.adam_family import *
from jgd.optimizers.per_leaf import *
from jgd.optimizers.quasi_newton import *
from jgd.optimizers.sgd_variants import *
from jgd.schedules import *
from jgd.transforms import (
    AddDecayedWeightsState,
    ScaleByAdamState,
    ScaleByRmsState,
    ScaleByRmsWithCountState,
    ScaleByRssState,
    ScaleByRStdDevState,
    ScaleByRStdDevWithCountState,
    ScaleByScheduleState,
    TraceState,
    add_decayed_weights,
    clip,
    clip_by_global_norm,
    scale,
    scale_by_adam,
    scale_by_learning_rate,
    scale_by_rms,
    scale_by_rss,
    scale_by_stddev,
    trace,
)
from jgd.transforms.accumulate import *
from jgd.transforms.adam_family import *
from jgd.transforms.adan_lion_adadelta import *
from jgd.transforms.clipping import *
from jgd.transforms.combine import *
from jgd.transforms.elementwise import *
from jgd.transforms.grouping import *
from jgd.transforms.injection import *
from jgd.transforms.linesearch import *
from jgd.transforms.lookahead_wrapper import *
from jgd.transforms.masking import *
from jgd.transforms.nonfinite import *
from jgd.transforms.partitioning import *
from jgd.transforms.per_leaf import *
from jgd.tree import global_norm

__version__ = "0.1.0"

__all__ = [
    "AddDecayedWeightsState",
    "EmptyState",
    "GradientTransformation",
    "GradientTransformationExtraArgs",
    "OptState",
    "Params",
    "ScalarOrSchedule",
    "ScaleByAdamState",
    "ScaleByRStdDevState",
    "ScaleByRStdDevWithCountState",
    "ScaleByRmsState",
    "ScaleByRmsWithCountState",
    "ScaleByRssState",
    "ScaleByScheduleState",
    "Schedule",
    "Static",
    "TraceState",
    "Transform",
    "TransformInitFn",
    "TransformUpdateExtraArgsFn",
    "TransformUpdateFn",
    "Updates",
    "adagrad",
    "adam",
    "adamw",
    "add_decayed_weights",
    "apply_updates",
    "chain",
    "checkpoint",
    "clip",
    "clip_by_global_norm",
    "contrib",
    "gd",
    "global_norm",
    "identity",
    "lab",
    "losses",
    "models",
    "rmsprop",
    "scale",
    "scale_by_adam",
    "scale_by_learning_rate",
    "scale_by_rms",
    "scale_by_rss",
    "scale_by_stddev",
    "schedules",
    "sgd",
    "trace",
    "train",
    "tree",
]
# The schedules and the catalogue's themed modules (functions and states), flat,
# as optax has them.
__all__ += schedules.__all__
# optax's losses at its top level
__all__ += [
    "convex_kl_divergence",
    "cosine_distance",
    "cosine_similarity",
    "ctc_loss",
    "ctc_loss_with_forward_probs",
    "generalized_kl_divergence",
    "hinge_loss",
    "huber_loss",
    "kl_divergence",
    "l2_loss",
    "log_cosh",
    "ntxent",
    "safe_softmax_cross_entropy",
    "sigmoid_binary_cross_entropy",
    "sigmoid_focal_loss",
    "smooth_labels",
    "softmax_cross_entropy",
    "softmax_cross_entropy_with_integer_labels",
    "squared_error",
]
__all__ += _o_adam_family.__all__
__all__ += _o_per_leaf.__all__
__all__ += _o_sgd_variants.__all__
__all__ += _o_quasi_newton.__all__
__all__ += _t_adam_family.__all__
__all__ += _t_adan_lion_adadelta.__all__
__all__ += _t_per_leaf.__all__
__all__ += _t_elementwise.__all__
__all__ += _t_clipping.__all__
__all__ += _t_linesearch.__all__
__all__ += _t_masking.__all__
__all__ += _t_partitioning.__all__
__all__ += _t_grouping.__all__
__all__ += _t_combine.__all__
__all__ += _t_lookahead_wrapper.__all__
__all__ += _t_accumulate.__all__
__all__ += _t_nonfinite.__all__
__all__ += _t_injection.__all__


_LAZY = (
    "bench",
    "checkpoint",
    "contrib",
    "demo",
    "lab",
    "train",
)  # imported on first attribute access


def __getattr__(name):
    # EmptyState is optax's class once optax is imported (jgd.base.empty_state_type).
    if name == "EmptyState":
        return base.empty_state_type()
    if name in _LAZY:
        return importlib.import_module(f"jgd.{name}")  # also sets jgd.<name>
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
