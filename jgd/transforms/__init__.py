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

The code sits in themed modules: ``basic`` (scaling, learning rate,
momentum), ``adaptive`` (RMSprop, AdaGrad, Adam), ``regularization`` (weight
decay, clipping), ``adam_family``, ``adan_lion_adadelta``, ``per_leaf``,
``elementwise``, ``clipping``, ``linesearch`` and ``masking``. A theme module's
``__all__`` (functions and states) is re-exported here and at the top level.
"""

from jgd.transforms import (
    accumulate,
    adam_family,
    adan_lion_adadelta,
    clipping,
    combine,
    elementwise,
    grouping,
    injection,
    linesearch,
    lookahead_wrapper,
    masking,
    nonfinite,
    partitioning,
    per_leaf,
)
from jgd.transforms.accumulate import *
from jgd.transforms.adam_family import *
from jgd.transforms.adan_lion_adadelta import *
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
__all__ += adam_family.__all__
__all__ += adan_lion_adadelta.__all__
__all__ += per_leaf.__all__
__all__ += elementwise.__all__
__all__ += clipping.__all__
__all__ += linesearch.__all__
__all__ += masking.__all__
__all__ += partitioning.__all__
__all__ += grouping.__all__
__all__ += combine.__all__
__all__ += lookahead_wrapper.__all__
__all__ += accumulate.__all__
__all__ += nonfinite.__all__
__all__ += injection.__all__
