r"""Temporal order problem: Pascanu, Mikolov, Bengio (ICML 2013), sec. 4.1.1, Fig. 7.

The input is a stream of distractor symbols {c, d, e, f}; at one step in
[T/10, 2T/10] and one in [4T/10, 5T/10] an A or a B appears. The network
must say at the end which of AA, AB, BA, BB it saw.

Fig. 7 (ICML version): 50 hidden units, constant learning rate 0.01, no
momentum, clip threshold 1, Omega weight 4, minibatches of 20; success is
fewer than 1% errors on 10,000 fresh sequences. The paper's result: SGD and
SGD-C fail beyond length ~20, SGD-CR solves every length up to 200 for 5/5
seeds, and one model trained on lengths 50-200 generalises to longer ones.

The main job (the README's command):

    python launch.py --config=experiments/temporal_order.py --workdir=/tmp/torder

trains SGD-CR on T=50 with the Fig. 7 settings and stops as soon as it
solves the task. Arguments (``--config=experiments/temporal_order.py:ARGS``):

    method=sgd|sgd-c|sgd-cr   Fig. 7's curves (default sgd-cr)
    init=sigmoid|basic_tanh|smart_tanh   Fig. 7's panels (default smart_tanh)
    length=T                  fixed length T (default 50)
    max_length=T2             with it: lengths drawn in [T, T2] per batch
    seed=N, steps=N           seed and step budget
    smoke                     a run of seconds (tests and CI)

e.g. ``...temporal_order.py:method=sgd-c,length=100``. Measured wall times
and results are in RESULTS.md (commands beside each number).
"""

from experiments import common


def get_config(arg: str | None = None):
  a = common.parse_arg(arg, method='sgd-cr', init='smart_tanh', length=50, max_length=0,
                       seed=0, steps=200_000, smoke=False)
  c = common.base_config()
  c.seed = a.seed
  c.task.name = 'temporal_order'
  c.task.min_length = a.length
  c.task.max_length = max(a.max_length, a.length)
  c.model.cell = 'rnn'
  c.model.hidden_size = 50
  c.model.init_scheme = a.init
  c.model.activation = 'sigmoid' if a.init == 'sigmoid' else 'tanh'
  c.optim.name = 'sgd'
  c.optim.learning_rate = 0.01
  common.apply_method(c, a.method, clip=1.0, alpha=4.0)
  c.train.num_steps = a.steps
  if a.smoke:
    common.apply_smoke(c)
  return c
