r"""A modern recipe for GRUs and LSTMs on the tasks of Bai, Kolter, Koltun
(2018), "An empirical evaluation of generic convolutional and recurrent
networks for sequence modeling" (arXiv:1803.01271), Table 1: JSB Chorales,
Nottingham, Penn Treebank characters and the adding problem at T = 600,
each at no more parameters than the study's models.

The recipe is what practitioners use today (``../shared/references``:
hafner2017_tips_for_training_rnns.txt, "Hafner"; rnn_training_in_practice.txt,
"practice"): AdamW (a touch of decoupled weight decay) with a linear warm-up and cosine decay, global-norm
clipping at 1, the gate biases (LSTM forget 1, GRU reset -1), orthogonal
recurrent and Glorot input weights, layer norm on each input of every gate
mapping, variational recurrent dropout (or zoneout), a learned initial
state, stacked layers whose outputs are summed, early stopping on
validation. Omega (``omega=``), a growing window (``chunks=``) and
gradient accumulation (``accumulate=``) are there to be tried; off by
default (on JSB, Omega at 0.5 costs 0.14 nats and a window growing from 25
to 100 frames changes nothing: the ablation in RESULTS.md). The study's numbers
(``reporting/tables.py``, table ``bai2018``; published_numbers.md):

| task (metric) | size | LSTM | GRU | TCN |
|---|---|---|---|---|
| adding problem T=600 (MSE) | 70K | 0.164 | 5.3e-5 | 5.8e-5 |
| JSB Chorales (NLL per frame) | 300K | 8.45 | 8.43 | 8.10 |
| Nottingham (NLL per frame) | 1M | 3.29 | 3.46 | 3.07 |
| PTB char (bpc) | 3M | 1.36 | 1.37 | 1.31 |

Fidelity ("study" = Bai et al. 2018 and their public code; "ours" = this
file's defaults):

| setting | study | ours | source |
|---|---|---|---|
| music data, splits | JSB Chorales and Nottingham piano-rolls (Boulanger-Lewandowski et al. 2012), their train/valid/test | the same corpora and splits (``datasets/music.py``) | study sec. 5.4 |
| music metric | NLL per frame (nats, summed over the 88 keys), test | the same, whole test pieces, state carried across chunks | study sec. 5.4, Table 1 |
| music examples per update | one piece, the whole piece back-propagated | ``batch`` pieces (8) in chunks of ``chunk`` frames (JSB 100, Nottingham 200), state carried within a piece | study's TCN code (music_test.py; the RNN baselines' scripts are not public); ours: Hafner (truncated BPTT, state kept) |
| music frames scored | frames 1..T-1 of each piece (``x = piece[:-1]``, ``y = piece[1:]``) | the same (frame 0 would move a test NLL by at most 0.03 nats: ``scripts/first_frame.py``) | study's code (music_test.py) |
| PTB char data, metric | PTB characters, bits per character on test | Mikolov's ptb.char files (50 symbols), bpc over the whole test stream as one unbroken stream | study sec. 5.5 |
| PTB char examples per update | 32 streams, sequences of 400 (the first 80 as context) | 32 streams, windows of 200 with the state carried | study's TCN code (char_cnn_test.py); ours: Hafner |
| adding data | T = 600, two channels: u ~ U[0, 1) and two markers at distinct positions anywhere; target u_i + u_j | the same (``task.kwargs.variant='bai2018'``, ``datasets/pathological.py``) | study sec. 5.1; study's code (adding_problem/utils.py) |
| adding metric | MSE on 1,000 test sequences (predicting 1: "about 0.1767") | MSE (the test loss) on 10,000 fresh test sequences; predicting 1 gives Var = 1/6 = 0.1667 (tested), not 0.1767 | study sec. 5.1 |
| adding training set | 50,000 sequences drawn once, batch 32 | fresh sequences every step, batch 32 | study's TCN code (add_test.py); ours: the pathological tasks' generator |
| size | JSB 300K, Nottingham 1M, PTB char 3M, adding 70K parameters | the widest model of ``layers`` layers within the budget (``budget``, ``param_count``; tested) | study Table 1 |
| cells | LSTM and GRU, "standard regularizers", grid search over optimizer, recurrent dropout, learning rate, clipping, forget-gate bias | LSTM / GRU, forget bias 1 / reset bias -1, layer norm, learned initial state | study sec. 4; Hafner |
| optimiser | grid-searched (Adam among them) | AdamW, lr 1e-3, warm-up then cosine decay to 0 over the budget | practice ("a short warm-up and a gentle cosine decay") |
| weight decay | not stated | decoupled (AdamW), 0.01 x lr a step (``wd=``; 0 = plain Adam) | practice ("a touch of weight decay") |
| clipping | grid-searched | global norm 1 | practice ("0.5-1.0") |
| layers | not stated per task | 2, outputs summed (adding: 1) | Hafner ("stack two or three smaller layers ... sum the outputs") |
| regularisation | recurrent dropout (grid-searched) | variational recurrent dropout: JSB 0.25, Nottingham 0.25, PTB 0.1, adding 0 (fresh data cannot be overfit); dropout between layers (``ff_dropout=``, a fresh mask every step, also on the input notes; PTB's one-hot characters are not dropped, ``model.dropout_on_inputs``): JSB and Nottingham 0.3 (the best single runs on both, RESULTS.md), PTB 0 (not measured yet), adding 0 | Hafner; practice ("dropout on inputs and between layers"); Zaremba et al. 2014 |
| stopping, selection | not stated | early stopping on validation (``patience``), test at the lowest validation loss | practice |
| search | grid search per task | random search on validation: ``python launch.py sweep`` (below) | issue 13 |

Commands (one cell of the table each; a GRU fills the study's GRU column,
an LSTM its LSTM column):

    python launch.py --config=experiments/modern.py:dataset=jsb,cell=gru --workdir=runs/modern/jsb_gru
    python launch.py --config=experiments/modern.py:dataset=adding600,cell=lstm --workdir=runs/modern/add_lstm
    python launch.py table --workdir=runs/modern

The random search (``config.sweep``), ``trials`` trials (default 16) in
all: each draws a learning rate log-uniform in [3e-4, 3e-3], a depth at the
budget, 1, 2 or 3 layers of the widest width that fits
(``model.num_layers+model.hidden_size``: the two fields drawn together),
a recurrent dropout from {0, 0.1, 0.25} and a dropout between layers from
{0, 0.25, 0.5} (adding: neither). Trials that drew the same depth train
as members of one program, each at its own rate and dropouts (a dropout
the config has off, PTB's between layers, is switched on in a program
where a member drew it above 0, and a member at 0 trains without it;
``orchestration/sweep.py``); the
searches run before that (JSB, Nottingham) keep their groups of depth and
dropouts:

    python launch.py sweep --config=experiments/modern.py:dataset=jsb,cell=gru \
        --workdir=results/bai2018/jsb_gru      # what launch.py reproduce bai2018 --workdir=results runs

Arguments: ``dataset=jsb|nottingham|ptb_char|adding600``, ``cell=gru|lstm``,
``layers=N`` (default 2; adding 1), ``width=N`` (0: the widest within the
budget; a wider one is refused), ``lr=``, ``dropout=`` (recurrent),
``ff_dropout=`` (dropout on each layer's input and the head's input:
the feed-forward connections, ``model.dropout``; 0 = off), ``zoneout=``, ``clip=``, ``wd=`` (AdamW's decoupled weight decay), ``warmup=`` (updates), ``batch=``, ``chunk=``,
``epochs=`` (corpora), ``steps=`` (the update budget: adding's, or a
corpus's in place of its epochs), ``chunks=LEN@START/...`` (a corpus's
truncated-BPTT window growing during training, e.g.
``chunks=25@0/50@1200/100@2400,steps=9600``: needs ``steps=``),
``patience=`` (validations),
``omega=`` (Omega's weight, 0 = off), ``accumulate=`` (micro-batches per
update), ``seed=``, ``seeds=N`` (N seeds as one population), ``trials=``
(random draws of the sweep), and, to take one ingredient out (the
ablation, ``launch.py reproduce bai2018.ablation``): ``ln=0`` (no layer
norm), ``h0=0`` (a zero initial state), ``gate_bias=0`` (zero gate biases),
``schedule=constant`` (no warm-up or decay), ``smoke``. The corpora are read from
``data_dir`` (``--config.data_dir=DIR``), else $RNNOPT_DATA, else
~/.cache/rnnopt. RESULTS.md has our runs, their results, wall times and
how far each search has got (JSB searched and ablated at these defaults).
"""

from experiments import common
from models import cells

# The study's parameter budgets (Table 1, "size").
BUDGETS = {'jsb': 300_000, 'nottingham': 1_000_000, 'ptb_char': 3_000_000,
           'adding600': 70_000}
# dataset: (inputs, outputs) of the model
SHAPES = {'jsb': (88, 88), 'nottingham': (88, 88), 'ptb_char': (50, 50), 'adding600': (2, 1)}
# dataset: (layers, recurrent dropout, dropout between layers, batch, chunk,
#           warm-up updates, epochs or steps, patience in validations)
DEFAULTS = {'jsb': (2, 0.25, 0.3, 8, 100, 100, 300, 20),
            'nottingham': (2, 0.25, 0.3, 8, 200, 200, 150, 20),
            'ptb_char': (2, 0.1, 0.0, 32, 200, 500, 30, 3),
            'adding600': (1, 0.0, 0.0, 32, 0, 500, 20_000, 10)}
CELLS = ('gru', 'lstm')          # the recipe's cells: gated, with a gate bias
LAYERS = (1, 2, 3)               # the depths of the search
DROPOUTS = (0.0, 0.1, 0.25)      # the recurrent dropouts of the search
FF_DROPOUTS = (0.0, 0.25, 0.5)   # the search's dropouts between layers
WIDTH_MULTIPLE = 8               # widths are multiples of 8 (accelerator tiles)


def param_count(cell: str, layers: int, width: int, inputs: int, outputs: int,
                layer_norm: bool = True, learned_initial_state: bool = True) -> int:
  """Parameters of ``models.rnn.RecurrentNetwork`` with ``layers`` layers of
  ``width`` units (outputs summed, so every layer is ``width`` wide) and a
  linear head: per layer W_in [D, G H], W_rec [H, G H], b [G H] (GRU also
  b_rec_n [H]), layer-norm gains 2 G H, initial state [S]; head [H, O] + [O]."""
  cls = cells.cell_class(cell)      # tests/test_modern.py checks this against the built model
  g, h = cls.gates, width
  total = 0
  for i in range(layers):
    d = inputs if i == 0 else h
    total += d * g * h + h * g * h + g * h + (h if cell == 'gru' else 0)
    total += 2 * g * h if layer_norm else 0
    total += cls.state_factor * h if learned_initial_state else 0
  return total + h * outputs + outputs


def widest(dataset: str, cell: str, layers: int) -> int:
  """The widest width (a multiple of ``WIDTH_MULTIPLE``) whose model is
  within the dataset's budget."""
  inputs, outputs = SHAPES[dataset]
  width = WIDTH_MULTIPLE
  while param_count(cell, layers, width + WIDTH_MULTIPLE, inputs, outputs) <= BUDGETS[dataset]:
    width += WIDTH_MULTIPLE
  return width


def chunk_schedule(spec: str, steps: int) -> tuple[tuple[int, int], ...]:
  """``chunks=LEN@START/LEN@START/...`` as ``train.chunk_schedule``: the
  window is LEN frames (or characters) from update START on. The starts are
  updates, so the budget must be in updates too (``steps=``)."""
  if not spec:
    return ()
  if not steps:
    raise ValueError(f'chunks={spec!r} needs steps= (the update budget the windows are '
                     'scheduled over), e.g. steps=9600: JSB\'s 300 epochs of 32 updates')
  phases = []
  for item in spec.split('/'):
    length, at, start = item.partition('@')
    try:
      phases.append((int(start) if at else 0, int(length)))
    except ValueError:
      raise ValueError(f'chunks={spec!r}: each phase is LENGTH@START (START in updates), '
                       'e.g. chunks=25@0/50@1200/100@2400') from None
  return tuple(phases)


def get_config(arg: str | None = None):
  a = common.parse_arg(arg, dataset='jsb', cell='gru', layers=0, width=0, lr=1e-3,
                       dropout=float, ff_dropout=float, zoneout=0.0, clip=1.0, wd=0.01, warmup=int, batch=0, chunk=0,
                       epochs=0, steps=0, chunks='', patience=int, omega=0.0, accumulate=1, seed=0,
                       seeds=1, trials=16, ln=True, h0=True, gate_bias=True,
                       schedule='warmup_cosine', smoke=False)
  if a.dataset not in BUDGETS:
    raise ValueError(f'dataset={a.dataset!r} is not one of {", ".join(BUDGETS)}')
  if a.chunks and a.dataset == 'adding600':
    raise ValueError('chunks= schedules the window of a corpus; adding600 has whole sequences')
  if a.cell not in CELLS:
    raise ValueError(f'experiments/modern.py: cell={a.cell!r} is not one of {", ".join(CELLS)}')
  for name in ('layers', 'width', 'batch', 'chunk', 'epochs', 'steps', 'trials', 'seeds'):
    if a[name] < 0:
      raise ValueError(f'{name}={a[name]} must be >= 0 (0: the default)')
  for name in ('dropout', 'ff_dropout', 'warmup', 'patience'):   # not given: the dataset's
    if a[name] is not None and a[name] < 0:
      raise ValueError(f'{name}={a[name]} must be >= 0')
  layers, dropout, ff_dropout, batch, chunk, warmup, budget, patience = DEFAULTS[a.dataset]
  layers = a.layers or layers
  width = a.width or widest(a.dataset, a.cell, layers)
  size = param_count(a.cell, layers, width, *SHAPES[a.dataset])
  if size > BUDGETS[a.dataset] and not a.smoke:
    raise ValueError(f'{layers} layers of width={width} make {size:,} parameters, over the '
                     f"study's {BUDGETS[a.dataset]:,} for {a.dataset}; at most "
                     f'width={widest(a.dataset, a.cell, layers)}')

  c = common.base_config()
  c.seed = a.seed
  c.data_dir = ''                    # '' = $RNNOPT_DATA, else ~/.cache/rnnopt
  c.task.batch_size = a.batch or batch
  if a.dataset == 'adding600':
    c.task.name = 'addition'
    c.task.kwargs = {'variant': 'bai2018'}   # Bai et al.'s adding problem
    c.task.min_length = c.task.max_length = 600
    c.train.num_steps = a.steps or budget
    c.train.log_every = 100
    c.train.eval_every = 1_000
    c.train.eval_sequences = 2_000
    c.train.test_sequences = 10_000
    c.train.eval_batch_size = 1_000
  else:
    if a.dataset == 'ptb_char':
      c.task.name = 'ptb_char'
      c.task.kwargs = {'ahead': 1}
      c.task.eval_streams = 1        # valid/test scored as one unbroken stream
    else:
      c.task.name = 'music'
      c.task.kwargs = {'dataset': a.dataset}
      c.task.shuffle = True          # a new order of the pieces every epoch, per seed
    c.task.chunk = a.chunk or chunk  # truncated BPTT window, state carried
    c.task.epochs = a.epochs or budget
    c.train.num_steps = a.steps      # 0: task.epochs epochs (at most)
    c.train.chunk_schedule = chunk_schedule(a.chunks, a.steps)
    c.train.log_every = 50
    c.train.eval_every = 0           # validation at the end of every epoch

  common.apply_cell(c, a.cell)       # tanh, orthogonal/Glorot init, gate biases
  c.model.hidden_size = width
  c.model.num_layers = layers
  c.model.sum_layer_outputs = True
  c.model.layer_norm = a.ln
  c.model.learned_initial_state = a.h0
  c.model.gate_bias = a.gate_bias
  c.model.recurrent_dropout = dropout if a.dropout is None else a.dropout
  c.model.zoneout = a.zoneout
  c.model.dropout = ff_dropout if a.ff_dropout is None else a.ff_dropout
  # a character's one-hot input is not dropped (a dropped unit would be a dropped
  # character): PTB's dropout is between layers and before the head
  c.model.dropout_on_inputs = a.dataset != 'ptb_char'

  c.optim.name = 'adamw' if a.wd > 0 else 'adam'
  c.optim.weight_decay = a.wd
  c.optim.learning_rate = a.lr
  c.optim.schedule = a.schedule      # 'constant': the ablation's fixed rate
  c.optim.warmup_steps = (warmup if a.warmup is None else a.warmup) if a.schedule != 'constant' else 0
  c.optim.final_lr_fraction = 0.0
  c.optim.clip_norm = a.clip
  c.optim.accumulate_steps = a.accumulate
  c.reg.omega_alpha = a.omega        # 0: off
  if a.seeds > 1:                    # seeds seed, seed + 1, ... as members of one program
    c.population.seeds = tuple(range(a.seed, a.seed + a.seeds))
  c.train.stop_when_solved = False
  c.train.patience = patience if a.patience is None else a.patience
  c.train.patience_min_delta = 0.0 if a.dataset == 'adding600' else 0.001

  # The random search: every trial draws its learning rate, its depth (at the
  # widest width within the budget) and its dropouts; trials that drew the
  # same depth are members of one program (sweep.is_numeric).
  depths = tuple((n, widest(a.dataset, a.cell, n)) for n in LAYERS)
  c.sweep.grid = ()
  c.sweep.random = (('optim.learning_rate', 'log_uniform', 3e-4, 3e-3),
                    ('model.num_layers+model.hidden_size', 'choice', depths))
  if a.dataset != 'adding600':       # fresh data cannot be overfit: no dropout
    c.sweep.random += (('model.recurrent_dropout', 'choice', DROPOUTS),
                       ('model.dropout', 'choice', FF_DROPOUTS))
  c.sweep.trials = a.trials
  c.sweep.seeds = (a.seed,)
  c.sweep.select = 'loss'            # validation loss (for PTB the same order as bpc)

  if a.smoke:
    c.smoke = True
    c.model.hidden_size = a.width or 16
    c.optim.warmup_steps = 5
    c.train.num_steps = 60
    c.train.log_every = 20
    c.train.eval_every = 60
    if a.dataset == 'adding600':
      c.task.min_length = c.task.max_length = 50
      c.train.eval_sequences = c.train.test_sequences = 200
      c.train.eval_batch_size = 100
    else:
      c.task.chunk = min(c.task.chunk, 50)
      c.task.epochs = 1
    if a.dataset == 'ptb_char':
      c.task.eval_streams = 256
    c.sweep.random = (('optim.learning_rate', 'log_uniform', 3e-4, 3e-3),
                      ('model.num_layers+model.hidden_size', 'choice', ((1, 16), (2, 16))))
    if a.dataset != 'adding600':
      c.sweep.random += (('model.recurrent_dropout', 'choice', (0.0, 0.1)),
                         ('model.dropout', 'choice', (0.0, 0.25)))
    c.sweep.trials = min(a.trials, 4)
  common.declare_paper(c, 'bai2018', a.dataset, a.cell, companion=False,
                       budget=('train.num_steps' if a.dataset == 'adding600' else 'task.epochs',
                               budget), max_params=0 if a.smoke else BUDGETS[a.dataset])
  return c
