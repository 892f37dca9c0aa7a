r"""Long sequences: Muccino (2019), "Training Recurrent Neural Networks on Long
Sequences" (``../shared/references/muccino2019_training_rnns_on_long_sequences.txt``),
all its figures: SGD vs RMSprop vs Adam, with and without gradient clipping,
and the "batch sequence length" schedule (truncation length grown during
training, the state carried across chunks).

The post's setting: 15 synthetic price series of 20,000 steps
(``datasets.long_series``: two sinusoids whose amplitudes walk on the unit
circle, noise, offset 100), all 15 in every batch; inputs the changes over
the previous 128 steps; targets the discounted future returns
(``tasks.long_series``); two feed-forward layers then two LSTM
layers; learning rate 0.01 for every optimiser; the schedule cuts each
series into 100, then 50, 10, 2 and 1 chunks ("once the loss value fails to
decrease for 20 straight epochs"), with the state carried from chunk to
chunk. What the post reports (figures only, no numbers): SGD is slow;
RMSprop and Adam are "a significant improvement", Adam better but with
"many large spikes in loss"; clipping removes the spikes ("Adam maintains the
advantage over RMSprop"); the schedule gives "a significant initial speed
up in loss reduction" with SGD, and Adam + clipping + schedule is "the most
efficient model fitting that we have explored". It reports training loss
only.

Where the post is silent or we differ (also in ``datasets.long_series``):
the discount (0.99), the layer widths (``dense``, ``hidden``; its model
summary is an image we do not have), tanh feed-forward layers, no Gaussian
noise layers, clipping as a global-norm threshold of 1.0 (its "clip ...
at 1.0 standard deviation", most likely Keras ``clipnorm=1.0``), and the
schedule's phases: equal numbers of epochs (``epochs / 5`` each), not "20
epochs without improvement". Validation and test are 3 + 3 further series;
losses are mean squared errors of the normalised targets (0 predicted: ~1).

Clipping on and off are two members of one population (they differ only in
a number: "off" is a threshold no gradient reaches); optimisers and the
schedule change the program, so they are separate runs:

    python launch.py --config=experiments/long_sequences.py:optimizer=adam,schedule \
        --workdir=runs/long_sequences/adam_sched
    python -m reporting.figures.long_sequences runs/long_sequences

Arguments: ``optimizer=sgd|rmsprop|adam``, ``clip=both|on|off``,
``schedule`` (the 100/50/10/2/1 chunks), ``epochs=N`` (passes over the
series), ``series=N``, ``length=L`` (a multiple of 100), ``lags=K``,
``dense=W``, ``hidden=H``, ``lr=X``, ``clip_norm=X``, ``discount=G``,
``seed=N``, ``smoke`` (tiny: 4 series of 100 steps, seconds). Runtime on
one core of a 2-core CPU with the defaults (64/32 units): about 1.4 s per
epoch of 15 x 1,000 steps for the two members, so the post's 20,000 steps
take about 30 s an epoch. The reduced study in
RESULTS.md (``scripts/long_sequences_runs.sh``: ``length=1000,epochs=200``, each
optimiser with and without ``schedule``) took 150-185 s a run, 17 min for
the six.
"""

import math

import optim
from experiments import common

OPTIMIZERS = ('sgd', 'rmsprop', 'adam')
CHUNKS_PER_SERIES = (100, 50, 10, 2, 1)     # the post's schedule


def schedule_steps(length: int, epochs: int) -> tuple[tuple[int, int], ...]:
  """((start step, chunk length), ...) of the schedule, ``epochs // 5`` epochs a phase
  (an epoch of n chunks per series is n updates)."""
  per_phase = max(1, epochs // len(CHUNKS_PER_SERIES))
  phases, start = [], 0
  for n in CHUNKS_PER_SERIES:
    phases.append((start, length // n))
    start += per_phase * n
  return tuple(phases)


def get_config(arg: str | None = None):
  a = common.parse_arg(arg, optimizer='adam', clip='both', schedule=False, epochs=200,
                       series=15, length=20_000, lags=128, dense=64, hidden=32, lr=0.01,
                       clip_norm=1.0, discount=0.99, seed=0, smoke=False)
  if a.smoke:
    a.series, a.length, a.lags, a.dense, a.hidden, a.epochs = 4, 100, 8, 8, 8, 10
  if a.optimizer not in OPTIMIZERS:
    raise ValueError(f'optimizer={a.optimizer!r} is not one of {", ".join(OPTIMIZERS)}')
  if a.clip not in ('both', 'on', 'off'):
    raise ValueError(f'clip={a.clip!r} is not one of both, on, off')
  if a.length % 100:
    raise ValueError(f'length={a.length} must be a multiple of 100 (the schedule cuts a '
                     'series into 100 chunks)')
  c = common.base_config()
  c.seed = a.seed
  c.task.name = 'long_series'
  c.task.batch_size = a.series       # every batch holds all series (the post)
  c.task.chunk = a.length            # no schedule: the whole series per update
  c.task.kwargs = dict(num_series=a.series, length=a.length, lags=a.lags, discount=a.discount,
                       num_valid=3, num_test=3, data_seed=0,
                       eval_chunk=math.gcd(a.length, 1000))
  c.model.cell = 'lstm'
  c.model.num_layers = 2
  c.model.hidden_size = a.hidden
  c.model.input_layers = (a.dense, a.dense)
  c.model.init_scheme = 'default'
  c.optim.name = a.optimizer
  c.optim.learning_rate = a.lr
  c.optim.clip_norm = optim.NO_CLIP if a.clip == 'off' else a.clip_norm
  if a.clip == 'both':               # two members, one program
    c.population.hparams = ('optim.clip_norm',)
    c.population.rows = ((optim.NO_CLIP,), (a.clip_norm,))
  c.train.stop_when_solved = False
  c.train.eval_sequences = c.train.test_sequences = 0    # whole series are evaluated
  if a.schedule:
    phases = schedule_steps(a.length, a.epochs)
    per_phase = max(1, a.epochs // len(CHUNKS_PER_SERIES))
    c.train.chunk_schedule = phases
    c.train.num_steps = phases[-1][0] + per_phase       # the last phase: 1 update an epoch
    c.train.log_every = math.gcd(10, *(s for s, _ in phases[1:]))
    c.train.eval_every = 50 * c.train.log_every
  else:
    c.train.num_steps = a.epochs
    c.train.log_every = math.gcd(2, a.epochs)
    c.train.eval_every = 5 * c.train.log_every
  c.train.checkpoint_every_s = 120.0
  c.smoke = a.smoke
  return c
