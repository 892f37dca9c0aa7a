r"""Pascanu et al. (2013) Fig. 7: success rate of SGD, SGD-C and SGD-CR on the
temporal order problem against the sequence length, one panel per
initialisation (ICML version: sigmoid, basic tanh, smart tanh).

One run is one (initialisation, length) point: a population of 3 methods x
``seeds`` members, trained as one vmapped program. The three methods differ
only in numbers, so they share the program: SGD is clipping at a threshold
no gradient reaches (1e30) with Omega weight 0; SGD-C clips at 1 with weight
0; SGD-CR clips at 1 with weight 4 (the Fig. 7 settings: 50 units, learning
rate 0.01, no momentum, minibatches of 20). A member stops when it makes
fewer than 1% errors on 10,000 fresh sequences; success is measured on
10,000 more.

    python launch.py --config=experiments/temporal_order_fig7.py:init=smart_tanh,length=100 \
        --workdir=runs/fig7/smart_tanh_T100

``scripts/fig7_runs.sh`` runs the grid and ``python -m figures.fig7 DIR`` draws
the figure. The paper trains for up to 5M updates with 5 seeds per point; the
step budget here is an argument (``steps=``), and RESULTS.md says which
budget produced the figure it shows.
"""

from experiments import common, temporal_order

METHOD_ROWS = common.method_rows(clip=1.0, alpha=4.0)


def get_config(arg: str | None = None):
  a = common.parse_arg(arg, init='smart_tanh', length=50, seeds=5, steps=50_000, smoke=False)
  c = temporal_order.get_config(
      f'method=sgd-cr,init={a.init},length={a.length},steps={a.steps}' + (',smoke' if a.smoke else ''))
  common.apply_all_methods(c, clip=1.0, alpha=4.0)
  c.population.seeds = tuple(range(a.seeds))
  return c
