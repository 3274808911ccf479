"""Building blocks: small gradient transformations that optimizers chain.

Holds ``scale``, ``scale_by_learning_rate`` (the only one that flips the sign),
``trace`` (momentum, Nesterov), ``scale_by_rms`` (RMSprop), ``scale_by_stddev``
(centered RMSprop), ``scale_by_rss`` (AdaGrad), ``scale_by_adam``,
``add_decayed_weights``, ``clip`` and ``clip_by_global_norm``, with their state
types. Names, arguments, defaults and state fields are optax 0.2.8's.

Each is a frozen dataclass registered as a pytree: its numeric
hyperparameters are leaves (so ``jit`` does not recompile when they change and
``vmap``/``grad`` reach them), its flags and dtypes are static. In the update
equations ``g`` is the incoming update leaf, ``t`` the 1-based step.

The code sits in three themed modules: ``basic`` (scaling, learning rate,
momentum), ``adaptive`` (RMSprop, AdaGrad, Adam) and ``regularization``
(weight decay, clipping).
"""

from jgd.transforms.adaptive import (
    ScaleByAdam,
    ScaleByAdamState,
    ScaleByRms,
    ScaleByRmsState,
    ScaleByRmsWithCountState,
    ScaleByRss,
    ScaleByRssState,
    ScaleByRStdDevState,
    ScaleByRStdDevWithCountState,
    ScaleByStddev,
    scale_by_adam,
    scale_by_rms,
    scale_by_rss,
    scale_by_stddev,
)
from jgd.transforms.basic import (
    Scale,
    ScaleByLearningRate,
    ScaleByScheduleState,
    Trace,
    TraceState,
    scale,
    scale_by_learning_rate,
    trace,
)
from jgd.transforms.regularization import (
    AddDecayedWeights,
    AddDecayedWeightsState,
    Clip,
    ClipByGlobalNorm,
    add_decayed_weights,
    clip,
    clip_by_global_norm,
)

__all__ = [
    "AddDecayedWeights",
    "AddDecayedWeightsState",
    "Clip",
    "ClipByGlobalNorm",
    "Scale",
    "ScaleByAdam",
    "ScaleByAdamState",
    "ScaleByLearningRate",
    "ScaleByRStdDevState",
    "ScaleByRStdDevWithCountState",
    "ScaleByRms",
    "ScaleByRmsState",
    "ScaleByRmsWithCountState",
    "ScaleByRss",
    "ScaleByRssState",
    "ScaleByScheduleState",
    "ScaleByStddev",
    "Trace",
    "TraceState",
    "add_decayed_weights",
    "clip",
    "clip_by_global_norm",
    "scale",
    "scale_by_adam",
    "scale_by_learning_rate",
    "scale_by_rms",
    "scale_by_rss",
    "scale_by_stddev",
    "trace",
]
