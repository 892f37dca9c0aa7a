r"""Penn Treebank characters: Pascanu, Mikolov, Bengio (2013) Table 2 (sec. 4.2
and supplementary, "Language modelling").

A sigmoid RNN reads the character stream one-hot (50 symbols) and predicts,
with a softmax at every step, the next character (``ahead=1``) or the 5th
character ahead (``ahead=5``, "our assumption is that to solve this modified
task long term correlations are more important than short term ones"). The
score is the entropy in bits per character on the test stream, evaluated over
the whole stream with the state carried (``tasks.text``).

The supplementary's settings: 500 sigmoid units with no biases (Mikolov et
al. 2012), windows of 200 steps with the hidden state carried from one to the
next, clipping threshold 45 on the gradient of the cost *summed* over the
window (``train.loss_reduction='sum_over_time'``: the objective is the
window's summed NLL averaged over the streams of the batch, so the threshold
and learning rate act on a gradient 200 times that of the mean; Omega's
weight is not rescaled, as Omega is a ratio of gradient norms). Learning rate
for next-character prediction: 0.001 without clipping (SGD), 0.01 with
clipping (SGD+C), 0.05 with clipping and Omega (SGD+CR); Omega weight 0.01,
constant. For the 5th character ahead: 0.1 without Omega (SGD+C), 0.05 with
it (SGD+CR); Omega weight 0.05 on a 1/t schedule.

The paper's numbers (bits per character, SGD / SGD+C / SGD+CR; Mikolov et
al. 2012's RNN: 1.41):

    next character   train 1.46 / 1.34 / 1.36   test 1.50 / 1.42 / 1.41
    5th ahead        train  -   / 3.76 / 3.70   test  -   / 3.89 / 3.74

Fidelity (supp. = the supplementary's "Language modelling"):

| setting | paper | ours | where |
|---|---|---|---|
| model | 500 sigmoid units, no biases | same; the output layer keeps its bias | supp. |
| examples per update | "sequences of 200 steps, the hidden state carried over" | one stream, one window of 200 per update (B = 1; 25,087 updates an epoch) | supp. |
| order | the text in order | same; state reset once an epoch | supp. |
| clipping | 45 on the cost summed over the sequence | same (``loss_reduction='sum_over_time'``) | supp. |
| learning rate | next: 0.001 (SGD), 0.01 (SGD+C), 0.05 (SGD+CR); 5th ahead: 0.1 without Omega, 0.05 with (no schedule stated) | the same starting rates, then the schedule of the row below (not constant); 5th-ahead SGD (not in the paper): 0.001 | supp. |
| Omega | next: 0.01 constant; 5th ahead: 0.05 on 1/t (no unit given for t on PTB) | same, t in epochs (our reading: the unit the supp. gives for music) | supp. |
| initialisation | not stated; the model is "(Mikolov et al., 2012)", whose RNNLM toolkit draws each weight as a sum of three U(-0.1, 0.1) (std 0.1) | all weights N(0, 0.1) (``init=mikolov``, default; scheme 'basic_tanh'); ``init=authors``: N(0, 0.01), the authors' RNN.py sigmoid scheme, which learns far slower here (RESULTS.md) | supp. (model); RNNLM's initNet (scale) |
| learning-rate schedule | not stated | ``schedule=rnnlm`` (default): the RNNLM toolkit's (the toolkit of the model the paper names, Mikolov et al. 2012): once an epoch gains less than 0.3% on validation, halve the rate after every epoch, stop at the next such epoch; ``schedule=constant``: the rate as given throughout (0.2 bits worse here: RESULTS.md). The next-character record of ``reproduce pascanu2013.table2`` was branched from a constant-rate run at epoch 11 (its config.json says so) | RNNLM's ``trainNet``; our choice |
| stopping | not stated | until validation stops improving: a member stops 2 epochs after its best, at most ``epochs`` (20) | our choice |
| selection | not stated | test at each member's lowest validation | our choice |
| evaluation | test entropy in bits per character | the whole test stream, one unbroken stream | sec. 4.2 |

    python launch.py --config=experiments/ptb_char.py:ahead=1 --workdir=runs/ptb_char/next_sgdcr
    python launch.py --config=experiments/ptb_char.py:ahead=5 --workdir=runs/ptb_char/ahead5_sgdcr

Runtime on this machine (2-core Xeon, one pinned single-threaded process,
shared with other jobs): ``method=all`` at B = 1, about 14 updates/s, so 30
minutes an epoch; scoring valid or test as one unbroken stream takes about
9 s. ``smoke`` finishes in about 10 s.

Arguments: ``ahead=1|5``, ``schedule=constant|rnnlm`` (above), ``method=sgd|sgd-c|sgd-cr|all`` (default sgd-cr;
``all``: the three as members of one population, one program, with their own
learning rates), ``init=mikolov|authors`` (above), ``epochs=N``, ``batch=B``, ``seed=N``, ``cell=rnn|gru|lstm`` (the companion
rows: a GRU or LSTM of the same width, same techniques), ``smoke`` (tiny model,
60 updates on windows of 50, fast evaluation: well under a minute). The
corpus is read from ``data_dir`` (``--config.data_dir=DIR``), else
$RNNOPT_DATA, else ~/.cache/rnnopt (``python -m datasets.download ptb``).
"""

from experiments import common

CLIP = 45.0            # on the gradient of the window's summed cost
# init: weights N(0, 0.1), the scale of Mikolov's RNNLM (the paper's model), or
# N(0, 0.01), the authors' pathological-task code's sigmoid scheme
INITS = {'mikolov': 'basic_tanh', 'authors': 'sigmoid'}
# ahead: ({method: learning rate}, Omega weight, Omega schedule)
SETTINGS = {
    1: ({'sgd': 0.001, 'sgd-c': 0.01, 'sgd-cr': 0.05}, 0.01, 'constant'),
    5: ({'sgd': 0.001, 'sgd-c': 0.1, 'sgd-cr': 0.05}, 0.05, 'inverse_t'),
}


def get_config(arg: str | None = None):
  a = common.parse_arg(arg, ahead=1, method='sgd-cr', epochs=20, batch=1, seed=0,
                       cell='rnn', init='mikolov', schedule='rnnlm', smoke=False)
  if a.ahead not in SETTINGS:
    raise ValueError(f'ahead={a.ahead} is not one of {", ".join(map(str, SETTINGS))}')
  if a.schedule not in common.LR_SCHEDULES:
    raise ValueError(f'schedule={a.schedule!r} is not one of {", ".join(common.LR_SCHEDULES)}')
  if a.init not in INITS:
    raise ValueError(f'init={a.init!r} is not one of {", ".join(INITS)}')
  lrs, alpha, schedule = SETTINGS[a.ahead]
  c = common.base_config()
  c.seed = a.seed
  c.data_dir = ''                    # '' = $RNNOPT_DATA, else ~/.cache/rnnopt
  c.task.name = 'ptb_char'
  c.task.kwargs = {'ahead': a.ahead} # target: the symbol `ahead` steps later
  c.task.batch_size = a.batch        # parallel streams of the training text
  c.task.chunk = 200                 # truncated BPTT window (Pascanu et al.: 200)
  c.task.eval_streams = 1            # valid/test scored as this many unbroken streams
  c.task.epochs = a.epochs           # train.num_steps is set from it at build time
  c.model.cell = 'rnn'
  c.model.activation = 'sigmoid'
  c.model.init_scheme = INITS[a.init]
  c.model.hidden_size = 500
  c.model.use_bias = False
  c.train.loss_reduction = 'sum_over_time'   # clip 45 "on the sum of the cost"
  if a.method == 'all':        # the three methods as one population: one program
    methods = common.apply_all_methods(c, clip=CLIP, alpha=alpha)
    c.population.hparams = ('optim.clip_norm', 'reg.omega_alpha', 'optim.learning_rate')
    c.population.rows = tuple((clip, al, lrs[m])
                              for m, clip, al in common.method_rows(CLIP, alpha))
    c.optim.learning_rate = lrs['sgd-cr']
  else:
    common.apply_method(c, a.method, clip=CLIP, alpha=alpha)
    c.optim.learning_rate = lrs[a.method]
    methods = (a.method,)
  common.apply_cell(c, a.cell)       # the GRU/LSTM companion rows
  c.reg.omega_schedule = schedule
  c.reg.omega_schedule_unit = 'epoch'
  c.train.stop_when_solved = False
  c.train.log_every = 500
  c.train.eval_every = 0             # validation at the end of every epoch
  c.train.patience = 2               # until validation stops improving (2 epochs without)
  c.train.anneal = common.LR_SCHEDULES[a.schedule]
  c.train.num_steps = 0              # 0: task.epochs epochs
  if a.smoke:
    c.smoke = True
    c.task.chunk = 50
    c.task.eval_streams = 256
    c.model.hidden_size = 32
    c.train.num_steps = 60
    c.train.log_every = 20
    c.train.eval_every = 60
    c.train.anneal = ''              # judged once an epoch; a smoke run has no epoch
  common.declare_paper(c, 'pascanu_table2', f'ahead{a.ahead}', methods)
  return c
