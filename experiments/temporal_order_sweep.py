r"""A sweep on the temporal order problem: the layout of ``launch.py sweep``.

Two initialisations of the simple tanh RNN (a structural choice: one group
each) x 8 random draws of the learning rate (log-uniform in [1e-3, 1e-1])
and of the clipping threshold (log-uniform in [0.1, 10]), as in the random
search of Bengio et al. (2013), on temporal order with T = 50 and Omega
(SGD-CR, weight 4), 20,000 updates. Each trial is selected on its validation
loss and the best is reported on test.

    python launch.py sweep --config=experiments/temporal_order_sweep.py --workdir=runs/sweep_torder

Arguments: ``trials=``, ``steps=``, ``length=``, ``seeds=`` (seeds per
trial), ``workers=`` (0: one per core), ``smoke`` (2 trials, a few seconds each).
"""

from experiments import common, temporal_order


def get_config(arg: str | None = None):
  a = common.parse_arg(arg, trials=8, steps=20_000, length=50, seeds=1, workers=0, smoke=False)
  c = temporal_order.get_config(f'method=sgd-cr,length={a.length},steps={a.steps}'
                                + (',smoke' if a.smoke else ''))
  c.sweep.grid = (('model.init_scheme', ('smart_tanh', 'basic_tanh')),)
  c.sweep.random = (('optim.learning_rate', 'log_uniform', 1e-3, 1e-1),
                    ('optim.clip_norm', 'log_uniform', 0.1, 10.0))
  c.sweep.trials = 2 if a.smoke else a.trials
  c.sweep.seeds = tuple(range(a.seeds))
  c.sweep.workers = a.workers
  return c
