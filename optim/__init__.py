"""Optimisation: gradient transforms, schedules and the config-built chain."""

from optim.chain import accumulate_steps
from optim.chain import clips
from optim.chain import default_config
from optim.chain import make_optimizer
from optim.chain import NO_CLIP
from optim.chain import numeric_hyperparams
from optim.chain import OPTIMIZERS
from optim.chain import optimizer_only_fields
from optim.schedules import constant
from optim.schedules import learning_rate_schedule
from optim.schedules import regularizer_weight
from optim.schedules import sutskever_momentum
from optim.transforms import AutoClipState
from optim.transforms import clip_by_global_norm_auto
from optim.transforms import halve_if_rose
from optim.transforms import halve_on_rise
from optim.transforms import HalveOnRiseState
from optim.transforms import inspect
from optim.transforms import momentum_sgd
from optim.transforms import MomentumSGDState
from optim.transforms import set_hyperparams
from optim.transforms import shrink_recurrent
from optim.transforms import skip_large_updates
from optim.transforms import SkipLargeUpdatesState
