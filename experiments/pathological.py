r"""The other pathological problems: Pascanu, Mikolov, Bengio (2013), sec. 4.1.2
and the supplementary material ("Experimental setup").

Settings are the supplementary's where it gives them:

| problem               | units       | init            | lr    | alpha | clip | lengths |
|-----------------------|-------------|-----------------|-------|-------|------|---------|
| addition              | 50 tanh     | N(0, 0.1)       | 0.01  | 0.5   | 6    | 50-200  |
| multiplication        | as addition |                 |       |       |      | 50-200  |
| temporal_order_3bit   | 100 tanh    | smart tanh (*)  | 0.001 | 2     | 6    | 50-200  |
| random_permutation    | 100 tanh    | smart tanh (*)  | 0.001 | 1     | 6    | 50-200  |
| memorization(10)      | 50 tanh (*) | smart tanh (*)  | 0.01 (*) | 2 (*) | 1 (*) | one model per length |

(*) not given in the paper: the defaults of the authors' public code.

The paper's results: SGD-CR solves every problem with 100% success (fewer
than 1% errors on 10,000 fresh sequences) with one model for lengths 50 to
200, except random permutation, solved in 1 of 8 runs (ICML: 2 of 5); for
memorisation a separate model per length (50, 100, 150, 200).

    python launch.py --config=experiments/pathological.py:problem=addition --workdir=/tmp/add

Arguments: ``problem=`` one of the table's names (``memorization10`` is the
10-symbol-pattern, 5-symbol variant), ``method=sgd|sgd-c|sgd-cr`` (default
sgd-cr), ``length=`` and ``max_length=`` (the range; memorisation uses
``length`` alone), ``seed=``, ``steps=``, ``smoke``. Measured runs are in
RESULTS.md.
"""

from experiments import common

# problem: (task name, task kwargs, hidden, init, lr, alpha, clip, default max_length)
SETTINGS = {
    'addition': ('addition', {}, 50, 'basic_tanh', 0.01, 0.5, 6.0, 200),
    'multiplication': ('multiplication', {}, 50, 'basic_tanh', 0.01, 0.5, 6.0, 200),
    'temporal_order_3bit': ('temporal_order_3bit', {}, 100, 'smart_tanh', 0.001, 2.0, 6.0, 200),
    'random_permutation': ('random_permutation', {}, 100, 'smart_tanh', 0.001, 1.0, 6.0, 200),
    'memorization': ('memorization', {}, 50, 'smart_tanh', 0.01, 2.0, 1.0, 0),
    'memorization10': ('memorization', {'pattern_length': 10, 'num_symbols': 5},
                       50, 'smart_tanh', 0.01, 2.0, 1.0, 0),
}


def get_config(arg: str | None = None):
  a = common.parse_arg(arg, problem='addition', method='sgd-cr', length=50, max_length=-1,
                       seed=0, steps=500_000, smoke=False)
  if a.problem not in SETTINGS:
    raise ValueError(f'problem={a.problem!r} is not one of {", ".join(SETTINGS)}')
  task, kwargs, hidden, init, lr, alpha, clip, max_length = SETTINGS[a.problem]
  c = common.base_config()
  c.seed = a.seed
  c.task.name = task
  c.task.kwargs = dict(kwargs)
  c.task.min_length = a.length
  c.task.max_length = max(a.length, max_length if a.max_length < 0 else a.max_length)
  c.model.hidden_size = hidden
  c.model.init_scheme = init
  c.optim.learning_rate = lr
  common.apply_method(c, a.method, clip=clip, alpha=alpha)
  c.train.num_steps = a.steps
  if a.smoke:
    common.apply_smoke(c)
  return c
