r"""Polyphonic music: Pascanu, Mikolov, Bengio (2013) Table 1 (sec. 4.2 and
supplementary, "Polyphonic music prediction").

A sigmoid RNN reads an 88-key piano-roll and predicts the next frame with 88
independent sigmoid units; the score is the negative log-likelihood per
frame (nats, summed over keys) on the test pieces, evaluated over whole
pieces with the state carried across chunks.

The supplementary's settings: 300 sigmoid units (400 for MuseData), sequences
of 200 steps with the hidden state carried from one to the next, learning
rate 1.0 (0.5 for MuseData) "halved every time the error over an epoch
increased", clipping at 8 on the gradient of the cost averaged over the
sequence, Omega weight 0.5 on a 1/t schedule with t in epochs (0.1 for
MuseData). The paper's test NLL (arXiv v2 Table 1, SGD / SGD+C / SGD+CR):
Piano-midi.de 7.56 / 7.53 / 7.46, Nottingham 3.80 / 3.48 / 3.46, MuseData
7.11 / 7.00 / 6.99 (published_numbers.md has the ICML version and the train
columns).

Where the paper is silent: 16 pieces per minibatch (bucketed by length),
the 'sigmoid' initialisation of the authors' code (all weights N(0, 0.01)),
and "the error over an epoch" read as the mean training loss of the epoch.

    python launch.py --config=experiments/music.py:dataset=nottingham,method=sgd-cr \
        --workdir=runs/music/nottingham_sgdcr

Arguments: ``dataset=nottingham|piano|musedata|jsb``, ``method=sgd|sgd-c|sgd-cr|all``
(``all``: the three as members of one population, trained as one program),
``epochs=N``, ``batch=B``, ``seed=N``, ``cell=rnn|gru|lstm`` (the companion rows:
the same task and techniques with a GRU or LSTM of the same width), ``smoke``. The corpora are read from
``data_dir`` (``--config.data_dir=DIR``), else $RNNOPT_DATA, else
~/.cache/rnnopt (``python -m datasets.download music`` fetches them).
"""

from experiments import common

# dataset: (units, learning rate, Omega weight)
SETTINGS = {'piano': (300, 1.0, 0.5), 'nottingham': (300, 1.0, 0.5),
            'musedata': (400, 0.5, 0.1), 'jsb': (300, 1.0, 0.5)}


def get_config(arg: str | None = None):
  a = common.parse_arg(arg, dataset='nottingham', method='sgd-cr', epochs=100, batch=16,
                       seed=0, cell='rnn', smoke=False)
  if a.dataset not in SETTINGS:
    raise ValueError(f'dataset={a.dataset!r} is not one of {", ".join(SETTINGS)}')
  units, lr, alpha = SETTINGS[a.dataset]
  c = common.base_config()
  c.seed = a.seed
  c.data_dir = ''                    # '' = $RNNOPT_DATA, else ~/.cache/rnnopt
  c.task.name = 'music'
  c.task.kwargs = {'dataset': a.dataset}
  c.task.batch_size = a.batch
  c.task.chunk = 200                 # truncated BPTT length (Pascanu et al.: 200)
  c.task.epochs = a.epochs           # train.num_steps is set from it at build time
  c.model.cell = 'rnn'
  c.model.activation = 'sigmoid'
  c.model.init_scheme = 'sigmoid'
  c.model.hidden_size = units
  c.optim.learning_rate = lr
  if a.method == 'all':        # the three methods as one population: one program
    common.apply_all_methods(c, clip=8.0, alpha=alpha)
  else:
    common.apply_method(c, a.method, clip=8.0, alpha=alpha)
  common.apply_cell(c, a.cell)       # the GRU/LSTM companion rows
  c.reg.omega_schedule = 'inverse_t'
  c.reg.omega_schedule_unit = 'epoch'
  c.train.stop_when_solved = False
  c.train.halve_lr_on_rise = True
  c.train.log_every = 50
  c.train.eval_every = 500
  c.train.num_steps = 0              # 0: task.epochs epochs
  if a.smoke:
    c.smoke = True
    c.task.kwargs = {'dataset': 'jsb'}
    c.task.epochs = 1
    c.model.hidden_size = 32
    c.train.log_every = 10
    c.train.eval_every = 20
  return c
