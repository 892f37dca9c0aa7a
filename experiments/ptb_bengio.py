r"""Penn Treebank words and characters: Bengio, Boulanger-Lewandowski, Pascanu
(2013), "Advances in optimizing recurrent networks", Table 2 (sec. 4.2).

A one-layer RNN reads the stream and predicts the next symbol at every step;
the state is carried from window to window (truncated BPTT) and the score is
taken over the whole valid/test stream with the state carried
(``tasks.text``): perplexity for words, bits per character for
characters. The rows of Table 2, as ``method=``:

    sgd       RNN (SGD)        sigmoid units, no clipping
    sgd-c     RNN (SGD+C)      + gradient-norm clipping (30 or 50)
    sgd-cl    RNN (SGD+CL)     + half of the units leaky (a_i ~ U(0.02, 0.2), sec. 3.2)
    sgd-clr   RNN (SGD+CLR)    + rectifiers with an L1 penalty on their outputs (sec. 3.4)
    all       sgd and sgd-c at clip 30 and 50: the rows that differ only in
              numbers, as one population (one compiled program)

``level=word`` (sec. 4.2, 4.2.1): the 10k-word vocabulary split into 30
classes by frequency, each holding about 1/30 of the training tokens;
Mikolov's class-factored softmax P(w | h) = P(c(w) | h) P(w | c(w), h)
(``model.output='class_softmax'``; ``'softmax'``, the full softmax over 10k
words, is the option ``softmax=full``); 200 hidden units; gradients over
windows of 40 words with the state carried. The words are fed as ids and
read through rows of W_in (one-hot inputs without the [T, B, 10k] matmul).
``level=char``: 50 symbols one-hot, 500 hidden units, windows of 150.

The paper's grid (sec. 4.2.1), in ``config.sweep`` (``launch.py sweep``):

    words       learning rate {0.1, 0.01, 0.001}, clip {30, 50, none},
                sigmoid vs rectifier, no leaky units vs 50% of them
    characters  learning rate {0.5, 0.1, 0.01}

Here each row fixes its structure (activation, leaky units) and sweeps the
numbers (learning rate, and for the word C rows the clip threshold) as
members. The character grid names only learning rates, and so does ours:
the C rows clip at 50 (``clip=``), the rows' other settings (leaky units,
rectifiers) carried over from the words; our choices.

The paper's numbers (``../shared/references/published_numbers.md``): the
values of Bengio et al.'s Table 2 (word perplexity and character bpc for
SGD, SGD+C, SGD+CL, SGD+CLR) were not found in any source we have. The text
(sec. 4.2.1) quotes a perplexity of 134 for the state of the art at this
size, "a network of 200 hidden units" with 30 classes (Mikolov et al. 2011),
the reference point of the word rows. ``tables.PAPER['bengio_table2_word']``
and ``['bengio_table2_char']`` hold the empty cells.

Fidelity (sec. 4.2.1 unless named):

| setting | paper | ours | where |
|---|---|---|---|
| model | RNN, 200 units (words), 500 (characters) | same, no hidden biases | sec. 4.2.1; Mikolov's RNNLM |
| output | words: 30 frequency classes, class-factored softmax | same (``softmax=full`` the option) | sec. 4.2 |
| examples per update | "gradients over sequences of 40 steps (150 for characters), carrying the hidden state" | one stream, one window per update (B = 1) | sec. 4.2.1 |
| order | the text in order | the text in order, state reset once an epoch | sec. 4.2.1 |
| grid | lr {0.1, 0.01, 0.001} (characters {0.5, 0.1, 0.01}), clip {30, 50, none}, sigmoid vs rectifier, "no leaky units versus 50 of the units being sampled" | ``config.sweep``: the numbers as members, structure per row; characters: learning rates only, clip 50; leaky rows: half the units (our reading of "50 of the units" as 50%; read as 50 units it is a quarter of the 200 word units, not run) | sec. 4.2.1 |
| leaky factors | "sampled from 0.2 and ..." (cut in our copy) | a_i ~ U(0.02, 0.2), drawn once from a fixed seed per layer: the same a_i in every member and seed (our choice) | sec. 3.2 |
| learning-rate schedule | not stated | Mikolov's RNNLM schedule (``schedule=rnnlm``, the default): constant until an epoch improves validation by less than 0.3%, then halved every epoch; ``schedule=constant`` the option | RNNLM, the model of the 134 reference; as ``ptb_char.py`` |
| stopping | not stated | RNNLM's: the second epoch short of 0.3%; else 2 epochs without a new best, at most ``epochs`` | RNNLM; our choice |
| sweep units | - | one member each (``sweep.part_size=1``): each finishes within a sitting | our choice |
| cost the thresholds act on | not stated | summed over the window (``cost=sum``); ``cost=mean`` a row of its own | our choice (Pascanu et al.'s PTB runs) |
| selection | best of the grid | the trial with the lowest validation; test there | sec. 4.2.1 |
| reference | 134 perplexity, 200 units, 30 classes (Mikolov et al. 2011) | quoted beside the word rows | sec. 4.2.1 |

Where the paper is silent (our choices): the cost summed over the window
(``train.loss_reduction='sum_over_time'``, as Pascanu et al. did for PTB, so
the thresholds 30/50 act on the window's summed gradient) and averaged over
the streams (``cost=sum``, every row's default); ``cost=mean`` averages it
over the window's steps too, as the music experiments do, so the thresholds
and rates act on a per-step gradient about a window's length (150 for
characters) smaller, and the L1 penalty weighs that much more against the
cost. With the summed cost every rate of the character grid diverges in the
rectifier row (the unbounded state carried across windows overflows; RESULTS.md),
and the word grid's lr 0.1, so ``launch.py reproduce bengio2013.table2`` also
runs the rectifier rows with ``cost=mean``, each declared as a row of its own
('char/mean', 'word/mean': "cost averaged over the window, ours only"), never
as the paper's (the paper's sec. 1 calls the
training objective "the average of C_t over observed sequences", which
leans to the mean, but sec. 4.2.1 does not say what its thresholds of 30
and 50 were measured on); plain SGD (no momentum)
with RNNLM's learning-rate schedule; hidden units without biases
(Mikolov's RNNLM); the 'basic_tanh' initialisation (all weights
N(0, 0.1), about the scale of RNNLM's; with N(0, 0.01) and B = 32 the loss
stayed at the unigram level, ~6.57 nats, for the first 300 updates) for sigmoid units and 'smart_tanh' (sparse
W_rec of spectral radius 0.95) for rectifiers; L1 weight 1e-4 for the R
row (``l1=``); default learning rates 0.1 for sigmoid units (words and
characters) and 0.01 for rectifiers. At 0.1 the character loss first
rises above the uniform one (about 6 nats after 50 updates), then falls
below that of 0.01 within 400 updates; after one epoch of the paper's grid,
0.1 scored 2.95 bits per character against 3.47 for 0.01 (RESULTS.md).
``epochs`` epochs, the test scored at the lowest
validation loss; valid/test scored as one unbroken stream each.

    python launch.py --config=experiments/ptb_bengio.py:level=word,method=sgd-c \
        --workdir=runs/ptb_bengio/word_sgd_c
    python launch.py --config=experiments/ptb_bengio.py:level=word,method=all \
        --workdir=runs/ptb_bengio/word_all
    python launch.py --config=experiments/ptb_bengio.py:level=char,method=sgd-c \
        --workdir=runs/ptb_bengio/char_sgd_c
    python launch.py sweep --config=experiments/ptb_bengio.py:level=word,method=sgd-cl \
        --workdir=runs/ptb_bengio_sweep/word_sgd_cl

Runtime on a 2-core CPU, one core used and shared with other jobs (JAX
0.10; measured at the earlier defaults of 8 word and 32 character
streams per update, see RESULTS.md): words, class
softmax, B = 8: 0.026-0.036 s per update of 40 x 8 words (9-12k words/s),
so an epoch (2,904 updates) takes 75-105 s, and scoring valid or test as
one unbroken stream about 5 s; the full softmax (``softmax=full``) 3.5k
words/s at B = 8 (2.5x slower) and 3.8k at B = 32, where the class softmax
makes 21k (5.5x). The run ``level=word,method=sgd-c,epochs=14`` took 25
minutes. At the default, one window an update (B = 1): 11-12 ms an update
on an idle core of the AMD EPYC VM (``scripts/ptb_word_throughput.py
--batch=1``, 2026-12-02), about 4.5 minutes an epoch of 23,000 updates, and
1.7-1.9 s to score the validation stream. Characters (500 units, B = 32 x 150): about 0.15 s per update, some
3 minutes per epoch (1,045 updates); at the default B = 1, 64 updates/s on a
core shared with another run (2026-12-03), so an epoch of 33,449 windows
takes about 9 minutes and a member of at most 20 epochs up to 3 h. ``method=all`` costs about its number
of members times one run. ``smoke`` finishes in seconds.

Arguments: ``level=word|char``, ``method=`` (above; default sgd-c),
``softmax=class|full`` (words), ``epochs=N``, ``batch=B``, ``lr=`` (0: the
row's default), ``clip=`` (the C rows' threshold, 30 or 50; default 50),
``l1=``, ``schedule=rnnlm|constant``, ``window=N`` (the truncated-BPTT window;
0: the paper's 40 words or 150 characters), ``cost=sum|mean`` (above),
``seed=N``, ``smoke``. Data from ``--config.data_dir``, else
$RNNOPT_DATA, else ~/.cache/rnnopt (``python -m datasets.download ptb``).
"""

import optim
from experiments import common

LEVELS = ('word', 'char')
# method: (clip, leaky units, rectifiers + L1)
METHODS = {
    'sgd': (False, False, False),
    'sgd-c': (True, False, False),
    'sgd-cl': (True, True, False),
    'sgd-clr': (True, True, True),
}
# cost=: the objective differentiated, and so what the thresholds and rates act on
COSTS = {'sum': 'sum_over_time',   # summed over the window (Pascanu et al.'s PTB runs)
         'mean': 'mean'}           # averaged over the window's steps (the music experiments)
CLIPS = (30.0, 50.0)            # sec. 4.2.1: "cutoff threshold ... of 30, 50 or none"
LEAKY_FRACTION = 0.5            # "no leaky units versus 50 of the units"
# level: (hidden units, window, learning-rate grid, task name, default streams per batch)
LEVEL_SETTINGS = {
    'word': (200, 40, (0.1, 0.01, 0.001), 'ptb_word', 1),
    'char': (500, 150, (0.5, 0.1, 0.01), 'ptb_char', 1),
}


def get_config(arg: str | None = None):
  a = common.parse_arg(arg, level='word', method='sgd-c', softmax='class', epochs=20, batch=0,
                       lr=0.0, clip=50.0, l1=1e-4, schedule='rnnlm', window=0, cost='sum',
                       seed=0, smoke=False)
  if a.level not in LEVELS:
    raise ValueError(f'level={a.level!r} is not one of {", ".join(LEVELS)}')
  if a.method not in (*METHODS, 'all'):
    raise ValueError(f'method={a.method!r} is not one of {", ".join(METHODS)}, all')
  if a.schedule not in common.LR_SCHEDULES:
    raise ValueError(f'schedule={a.schedule!r} is not one of {", ".join(common.LR_SCHEDULES)}')
  if a.softmax not in ('class', 'full'):
    raise ValueError(f"softmax={a.softmax!r} is not 'class' or 'full'")
  if a.cost not in COSTS:
    raise ValueError(f'cost={a.cost!r} is not one of {", ".join(COSTS)}')
  if a.window < 0:
    raise ValueError(f"window={a.window}: give a number of steps, or 0 for the level's default")
  units, window, lr_grid, task, batch = LEVEL_SETTINGS[a.level]
  window = a.window or window
  clip, leaky, rectify = METHODS['sgd-c' if a.method == 'all' else a.method]

  c = common.base_config()
  c.seed = a.seed
  c.data_dir = ''                    # '' = $RNNOPT_DATA, else ~/.cache/rnnopt
  c.task.name = task
  c.task.kwargs = {'ahead': 1}       # the next symbol
  c.task.batch_size = a.batch or batch   # parallel streams of the training text
  c.task.chunk = window              # truncated BPTT window (40 words, 150 characters)
  c.task.eval_streams = 1            # valid/test scored as this many unbroken streams
  c.task.epochs = a.epochs           # train.num_steps is set from it at build time
  c.model.cell = 'rnn'
  c.model.activation = 'relu' if rectify else 'sigmoid'
  c.model.init_scheme = 'smart_tanh' if rectify else 'basic_tanh'
  c.model.hidden_size = units
  c.model.use_bias = False           # Mikolov's RNNLM hidden units have no biases
  c.model.leaky_fraction = LEAKY_FRACTION if leaky else 0.0   # sec. 3.2
  c.model.leak_range = (0.02, 0.2)
  if a.level == 'word':              # Mikolov's class-factored softmax (sec. 4.2), or the full one
    c.model.output = 'class_softmax' if a.softmax == 'class' else 'softmax'
    c.model.num_classes = 30
  c.optim.name = 'sgd'
  # 0: the row's default (see the docstring: 0.1 for sigmoid units, 0.01 for rectifiers)
  c.optim.learning_rate = a.lr or (0.01 if rectify else 0.1)
  c.optim.clip_norm = a.clip if clip else 0.0
  c.reg.l1_weight = a.l1 if rectify else 0.0                  # sec. 3.4
  c.train.loss_reduction = COSTS[a.cost]     # 'sum': the thresholds act on the window's summed cost
  c.train.stop_when_solved = False
  c.train.num_steps = 0              # 0: task.epochs epochs
  c.train.log_every = 500
  c.train.eval_every = 0             # validation at the end of every epoch
  c.train.patience = 2               # until validation stops improving (2 epochs without)
  c.train.anneal = common.LR_SCHEDULES[a.schedule]

  if a.method == 'all':    # SGD and SGD+C at both thresholds: numbers only, one program
    c.population.hparams = ('optim.clip_norm',)
    c.population.rows = ((optim.NO_CLIP,),) + tuple((t,) for t in CLIPS)

  # The paper's grid around these settings (sec. 4.2.1): numbers as members.
  # The character grid names learning rates only; its C rows keep one
  # threshold (``clip=``, default 50), which halves the grid (each character
  # member takes about 3 h of one core).
  grid = [('optim.learning_rate', lr_grid)]
  if clip and a.method != 'all' and a.level == 'word':
    grid.append(('optim.clip_norm', CLIPS))
  c.sweep.grid = tuple(grid)
  # Each member a unit of its own: a word member takes up to ~90 min of one core
  # (20 epochs of 4.5 min), so a unit finishes in one sitting and the sweep
  # resumes unit by unit; one member's checkpoint (two 10k x 200 tables, 16 MB)
  # is too large to keep beside the records. On a CPU the members of one
  # program run one after another anyway (population.layout 'map').
  c.sweep.part_size = 1

  if a.smoke:
    c.smoke = True
    c.task.batch_size = 4
    c.task.chunk = 10
    c.task.eval_streams = 64
    c.model.hidden_size = 16
    c.train.num_steps = 40
    c.train.log_every = 20
    c.train.eval_every = 40
    c.train.anneal = ''              # judged once an epoch; a smoke run has no epoch
    c.sweep.grid = tuple((k, v[:2]) for k, v in grid)
  methods = ('sgd',) + ('sgd-c',) * len(CLIPS) if a.method == 'all' else a.method
  # the mean cost is a reading of ours: a row of its own beside the paper's ('char/mean')
  row = a.level if a.cost == 'sum' else f'{a.level}/{a.cost}'
  common.declare_paper(c, f'bengio_table2_{a.level}', row, methods)
  return c
