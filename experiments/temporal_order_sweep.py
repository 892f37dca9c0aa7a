r"""A sweep on the temporal order problem: the layout of ``launch.py sweep``.

Two initialisations of the simple tanh RNN (a structural choice: one group
each) x 8 random draws of the learning rate (log-uniform in [1e-3, 1e-1])
and of the clipping threshold (log-uniform in [0.1, 10]), as in the random
search of Bengio et al. (2013), on temporal order with T = 50 and Omega
(SGD-CR, weight 4), 20,000 updates. Each trial is selected on its validation
loss and the best is reported on test.

    python launch.py sweep --config=experiments/temporal_order_sweep.py --workdir=runs/sweep_torder

No paper sweeps the temporal order problem; this is an extension. Fidelity:

| setting | paper | ours | where the paper says it |
|---|---|---|---|
| task, model, Omega, guard, validation | temporal order | ``experiments/temporal_order.py`` (fixed length, SGD-CR, Omega weight 4), whose table applies | ICML Fig. 7 |
| search | random search, learning rate in [1e-4, 1e-1] (music) | 8 trials, learning rate log-uniform in [1e-3, 1e-1], clip threshold log-uniform in [0.1, 10] | Bengio et al. 2013, sec. 4.1.1; ranges here: our choice |
| budget | none | 20,000 updates a trial, stop when solved | our choice |
| selection | lowest validation loss, reported on test | the same | Bengio et al. 2013, sec. 4.1.1 |
| success | fewer than 1% wrong of 10,000 | ``success=paper`` (default) or ``authors`` (0 wrong) | Pascanu et al. supp. |

Arguments: ``trials=``, ``steps=``, ``length=``, ``seeds=`` (seeds per
trial), ``workers=`` (0: one per core), ``smoke`` (2 trials a group, so 4 runs of a few seconds each),
``success=paper|authors``.
"""

from experiments import common, temporal_order


def get_config(arg: str | None = None):
  a = common.parse_arg(arg, trials=8, steps=20_000, length=50, seeds=1, workers=0,
                       success='paper', smoke=False)
  c = temporal_order.get_config(f'method=sgd-cr,length={a.length},steps={a.steps},'
                                f'success={a.success}'
                                + (',smoke' if a.smoke else ''))
  c.sweep.grid = (('model.init_scheme', ('smart_tanh', 'basic_tanh')),)
  c.sweep.random = (('optim.learning_rate', 'log_uniform', 1e-3, 1e-1),
                    ('optim.clip_norm', 'log_uniform', 0.1, 10.0))
  c.sweep.trials = 2 if a.smoke else a.trials
  c.sweep.seeds = tuple(range(a.seeds))
  c.sweep.workers = a.workers
  return c
