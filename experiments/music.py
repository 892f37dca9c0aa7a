r"""Polyphonic music: Pascanu, Mikolov, Bengio (2013) Table 1 (sec. 4.2 and
supplementary, "Polyphonic music prediction").

A sigmoid RNN reads an 88-key piano-roll and predicts the next frame with 88
independent sigmoid units; the score is the negative log-likelihood per
frame (nats, summed over keys) on the test pieces, evaluated over whole
pieces with the state carried across chunks.

The paper's test NLL (arXiv v2 Table 1, SGD / SGD+C / SGD+CR): Piano-midi.de
7.56 / 7.53 / 7.46, Nottingham 3.80 / 3.48 / 3.46, MuseData 7.11 / 7.00 /
6.99 (published_numbers.md has the ICML version and the train columns).

Fidelity (supp. = the supplementary's "Polyphonic music prediction"):

| setting | paper | ours | where |
|---|---|---|---|
| model | sigmoid RNN, 300 units (MuseData 400) | same | supp. |
| output | 88 independent sigmoid units, NLL per frame | same, nats summed over keys | sec. 4.2 |
| examples per update | one sequence of 200 steps | one piece's chunk of 200 frames (B = 1) | supp. |
| order | not stated | pieces in a new random order every epoch, drawn from each member's seed | our choice |
| state | not stated for music ("we train our model ... on sequences of 200 steps"; "the hidden state is carried over from one step to the next" is said of the language model) | carried from chunk to chunk within a piece, reset at its start (`task.reset_every_chunk=True`: every chunk starts afresh, the other reading; `task.shuffle_chunks=True`: also all pieces' chunks shuffled together, a data set of independent 200-step sequences) | supp.; ours as Bengio et al. 2013 sec. 4.1.1 (same group, same corpora: "carried over ... if they belong to the same song, otherwise is set to 0") |
| initialisation | not stated | all weights N(0, 0.01) ('sigmoid') | authors' code (RNN.py) |
| learning rate | 1.0 (MuseData 0.5), halved every time the error over an epoch rose | same; the error is the epoch's mean training NLL per frame, as its updates trained (other readings: `train.halve_lr_on_valid`, the validation NLL; `train.halve_lr_on_train_pass`, the training set scored after the epoch) | supp. |
| clipping | 8, cost averaged over the sequence | 8, on the mean NLL per scored frame of the chunk | supp. |
| Omega | alpha_t = 1/(2t), "initial value 0.5", t in epochs; MuseData "initial value 0.1 and alpha_t = 1/t" | 0.5/t; MuseData 0.1/t (1/t read as the schedule's shape; the literal 1/t, `reg.omega_alpha=1.0`, measured level with it: RESULTS.md); ratio of squared norms | supp.; authors' code |
| stopping | not stated | a member stops 20 epochs after its last validation 0.01 below the one before (a creep of 1e-5 an epoch does not keep it going), at most 250 epochs | our choice |
| selection | not stated | test at each member's lowest validation NLL | our choice (as Bengio et al. 4.1.1) |
| frames scored | not stated | frames 1..T-1 of each piece, each from the frames before it (frame 0 has none); scoring frame 0 from the initial state instead would move a test NLL by at most 0.03 nats on these four sets (`scripts/first_frame.py`, RESULTS.md) | our choice (as Bai et al.'s code) |
| evaluation | test NLL per frame | over whole pieces, state carried across chunks | sec. 4.2 |
| biases | not stated | hidden and output biases | our choice |

    python launch.py --config=experiments/music.py:dataset=nottingham,method=sgd-cr \
        --workdir=runs/music/nottingham_sgdcr

Runtime, ``method=all`` (the three methods as one program) on one pinned core
of our 2-core VMs (``python -m reporting.walltimes results``): Nottingham
about 2 h, Piano-midi.de 8-26 min, MuseData 41-75 min a seed (the range is the
code getting faster between runs). ``launch.py reproduce pascanu2013.table1``
runs the table's nine cells, three seeds where RESULTS.md says so.

Arguments: ``dataset=nottingham|piano|musedata|jsb``, ``method=sgd|sgd-c|sgd-cr|all``
(``all``: the three as members of one population, trained as one program),
``epochs=N``, ``batch=B``, ``seed=N``, ``seeds=N`` (seeds seed..seed+N-1 as members), ``cell=rnn|gru|lstm`` (the companion rows:
the same task and techniques with a GRU or LSTM of the same width), ``lrs=0.25/0.5/1`` (one method's learning
rates as members of one population; `launch.py table` reports the one with the lowest validation),
``clips=0.5/1/2`` (likewise the clipping thresholds of sgd-c or sgd-cr), ``smoke`` (a few updates of a small model,
on JSB unless ``dataset=`` names another). The corpora are read from
``data_dir`` (``--config.data_dir=DIR``), else $RNNOPT_DATA, else
~/.cache/rnnopt (``python -m datasets.download music`` fetches them).
"""

from experiments import common

# dataset: (units, learning rate, Omega weight)
SETTINGS = {'piano': (300, 1.0, 0.5), 'nottingham': (300, 1.0, 0.5),
            'musedata': (400, 0.5, 0.1), 'jsb': (300, 1.0, 0.5)}


def get_config(arg: str | None = None):
  a = common.parse_arg(arg, dataset=str, method='sgd-cr', epochs=250, batch=1,
                       seed=0, seeds=1, cell='rnn', lrs='', clips='', smoke=False)
  if a.dataset is None:    # smoke: JSB, the smallest, unless a dataset is named
    a.dataset = 'jsb' if a.smoke else 'nottingham'
  if a.dataset not in SETTINGS:
    raise ValueError(f'dataset={a.dataset!r} is not one of {", ".join(SETTINGS)}')
  grid = _grid(a)
  units, lr, alpha = SETTINGS[a.dataset]
  c = common.base_config()
  c.seed = a.seed
  c.data_dir = ''                    # '' = $RNNOPT_DATA, else ~/.cache/rnnopt
  c.task.name = 'music'
  c.task.kwargs = {'dataset': a.dataset}
  c.task.batch_size = a.batch        # pieces per update (the paper: one)
  c.task.shuffle = True              # a new order of the pieces every epoch, per seed
  c.task.chunk = 200                 # truncated BPTT length (Pascanu et al.: 200)
  c.task.reset_every_chunk = False   # True: each training chunk starts from the initial state
  c.task.shuffle_chunks = False      # True: that, and all pieces' chunks in a new order every epoch
  c.task.epochs = a.epochs           # train.num_steps is set from it at build time
  c.model.cell = 'rnn'
  c.model.activation = 'sigmoid'
  c.model.init_scheme = 'sigmoid'
  c.model.hidden_size = units
  c.optim.learning_rate = lr
  if a.method == 'all':        # the three methods as one population: one program
    methods = common.apply_all_methods(c, clip=8.0, alpha=alpha)
  else:
    common.apply_method(c, a.method, clip=8.0, alpha=alpha)
    methods = (a.method,)
  common.apply_cell(c, a.cell)       # the GRU/LSTM companion rows
  if grid:                           # one method's rates or thresholds as members
    c.population.hparams = (grid[0],)
    c.population.rows = tuple((v,) for v in grid[1])
  if a.seeds > 1:                    # seeds seed, seed + 1, ... as members of one program
    c.population.seeds = tuple(range(a.seed, a.seed + a.seeds))
  c.reg.omega_schedule = 'inverse_t'
  c.reg.omega_schedule_unit = 'epoch'
  c.train.stop_when_solved = False
  c.train.halve_lr_on_rise = True
  c.train.log_every = 200
  c.train.eval_every = 0             # validation at the end of every epoch
  c.train.patience = 20              # stop a member 20 epochs after its best validation
  c.train.patience_min_delta = 0.01  # ... that beat the one before by 0.01 nats (the tables' last digit)
  c.train.num_steps = 0              # 0: task.epochs epochs (at most)
  if a.smoke:
    c.smoke = True
    c.task.epochs = 1
    c.model.hidden_size = 32
    c.train.log_every = 10
    c.train.eval_every = 20
  common.declare_paper(c, 'pascanu_table1', c.task.kwargs['dataset'], methods)
  return c


def _grid(a) -> tuple[str, tuple[float, ...]] | None:
  """``lrs=`` or ``clips=`` as (the field, its values); None when neither."""
  given = [(k, v) for k, v in (('lrs', a.lrs), ('clips', a.clips)) if v]
  if not given:
    return None
  if len(given) > 1:
    raise ValueError('give lrs= or clips=, not both (a population varies one field here)')
  key, text = given[0]
  if a.method == 'all':
    raise ValueError(f'{key}= is a grid of one method: give method=sgd, sgd-c or sgd-cr, not all')
  if key == 'clips' and a.method == 'sgd':
    raise ValueError('clips= needs a clipped method (method=sgd-c or sgd-cr)')
  try:
    values = tuple(float(v) for v in text.split('/'))
  except ValueError:
    raise ValueError(f'{key}={text!r}: give numbers separated by "/", e.g. {key}=0.5/1/2') from None
  if any(v <= 0 for v in values) or len(set(values)) != len(values):
    raise ValueError(f'{key}={text!r}: the values must be positive and distinct')
  return ('optim.learning_rate' if key == 'lrs' else 'optim.clip_norm'), values
