r"""Pascanu et al. (2013) Fig. 7: success rate of SGD, SGD-C and SGD-CR on the
temporal order problem against the sequence length, one panel per
initialisation (ICML version: sigmoid, basic tanh, smart tanh).

One run is one (initialisation, length) point: a population of 3 methods x
``seeds`` members, trained as one vmapped program. The three methods differ
only in numbers, so they share the program: SGD is clipping at a threshold
no gradient reaches (1e30) with Omega weight 0; SGD-C clips at 1 with weight
0; SGD-CR clips at 1 with weight 4. Everything else is
``experiments/temporal_order.py`` at a fixed length, whose fidelity table
applies; what is particular to the figure:

| setting | paper | ours | where the paper says it |
|---|---|---|---|
| methods | MSGD, MSGD-C, MSGD-CR: lr 0.01, no momentum, clip 1, Omega weight 4 | the same, as one population | ICML Fig. 7 |
| SGD | no clipping (authors' RNN.py: no clipping and no overflow guard) | threshold ``optim.NO_CLIP`` (1e30), which no gradient reaches; the guard (skip above 1e10) stays on, as for the other members | ICML Fig. 7; guard: our choice |
| lengths | not given (x axis: log length, about 2 to 5.5) | 25, 50, 100, 200 (``launch.py reproduce pascanu2013.fig7``) | ICML Fig. 7; our choice |
| seeds per point | 5 | 5 (``seeds=``) | ICML Fig. 7 |
| budget | at most 5M updates | ``steps=``, default 50,000 (issue 10's minimum); every member stops when solved | ICML Fig. 7 |
| success | fewer than 1% wrong on 10,000 fresh sequences | ``success=paper`` (default) or ``success=authors`` (0 wrong); the figure's title names the run's criterion | supp., "The pathological synthetic tasks"; authors' RNN.py |

    python launch.py --config=experiments/temporal_order_fig7.py:init=smart_tanh,length=100 \
        --workdir=runs/fig7/smart_tanh_T100

``launch.py reproduce pascanu2013.fig7`` runs the grid (three initialisations x
four lengths) and ``python -m reporting.figures.fig7 DIR`` draws the figure.
Runtime at the default 50,000 updates, one pinned core of our 2-core VMs: 3-158
min a point (the longer lengths, where fewer members solve and stop, cost
most), 7.3 h for the grid (``python -m reporting.walltimes results``).
RESULTS.md says which budget and criterion produced the figure it shows.
"""

from experiments import common, temporal_order

METHOD_ROWS = common.method_rows(clip=1.0, alpha=4.0)


def get_config(arg: str | None = None):
  a = common.parse_arg(arg, init='smart_tanh', length=50, seeds=5, steps=50_000,
                       success='paper', smoke=False)
  c = temporal_order.get_config(
      f'method=sgd-cr,init={a.init},length={a.length},steps={a.steps},success={a.success}'
      + (',smoke' if a.smoke else ''))
  _, clip, alpha = temporal_order.FIG7
  methods = common.apply_all_methods(c, clip=clip, alpha=alpha)
  c.population.seeds = tuple(range(a.seeds))
  common.declare_paper(c, 'pascanu_fig7', f'{a.init} T={a.length}', methods)
  return c
