"""What every experiment config shares: the base config and the argument grammar.

An experiment file defines ``get_config(arg: str | None)``; ``arg`` is what
follows the colon in ``--config=experiments/FILE.py:ARG``: comma-separated
``key=value`` pairs and bare switches, e.g. ``method=sgd-cr,length=100,smoke``.
"""

from __future__ import annotations

import math

import ml_collections

import optim
import tasks

# The methods of Pascanu et al. (2013): plain SGD, SGD with gradient-norm
# clipping (C), and clipping plus the regulariser Omega (R).
METHODS = ('sgd', 'sgd-c', 'sgd-cr')
# Penn Treebank configs' schedule= argument -> train.anneal ('': a constant rate)
LR_SCHEDULES = {'constant': '', 'rnnlm': 'rnnlm'}


TRUE = ('1', 'true', 'yes', 'on')      # a boolean argument's spellings
FALSE = ('0', 'false', 'no', 'off')


def parse_bool(raw: str) -> bool:
  """A boolean's text: one of TRUE or FALSE (ValueError otherwise, never a silent False)."""
  if raw.strip().lower() not in TRUE + FALSE:
    raise ValueError(f'{raw!r} is not a boolean: one of {", ".join(TRUE)} or {", ".join(FALSE)}')
  return raw.strip().lower() in TRUE


def parse_arg(arg: str | None, **defaults) -> ml_collections.ConfigDict:
  """Parses ``k=v,switch,...`` against typed defaults; a typo names the valid keys.

  A bare word is a boolean switch set to True (``smoke``); a boolean's value
  is one of TRUE or FALSE (anything else is refused, not read as False). A
  key given twice is refused. A default that is a type (``dropout=float``)
  makes an argument with no value of its own: None unless given (the config
  then picks one, e.g. the dataset's).
  """
  values = {k: None if isinstance(d, type) else d for k, d in defaults.items()}
  seen = set()
  for item in filter(None, (arg or '').split(',')):
    key, sep, raw = item.partition('=')
    key, raw = key.strip(), raw.strip()
    if key not in defaults:
      raise ValueError(f'unknown config argument {key!r}; valid: {", ".join(sorted(defaults))}')
    if key in seen:
      raise ValueError(f'config argument {key!r} is given twice')
    seen.add(key)
    kind = defaults[key] if isinstance(defaults[key], type) else type(defaults[key])
    if not sep:
      if kind is not bool:
        raise ValueError(f'config argument {key!r} needs a value ({key}=...)')
      values[key] = True
    elif kind is bool:
      try:
        values[key] = parse_bool(raw)
      except ValueError as e:
        raise ValueError(f'config argument {key}={e}') from None
    else:
      try:
        values[key] = kind(raw)
      except ValueError:
        raise ValueError(f'config argument {key}={raw!r} is not a valid '
                         f'{kind.__name__}') from None
      if kind is float and not math.isfinite(values[key]):
        raise ValueError(f'config argument {key}={raw!r} is not a finite number')
  return ml_collections.ConfigDict(values)


def base_config() -> ml_collections.ConfigDict:
  """Defaults shared by every experiment (each field commented)."""
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.smoke = False                    # a run of seconds (the smoke switch): never fills a table cell

  c.task = ml_collections.ConfigDict()
  c.task.name = 'temporal_order'     # datasets.pathological.TASKS
  c.task.kwargs = ml_collections.ConfigDict()   # task-specific options
  c.task.batch_size = 20             # minibatch size (Pascanu et al.: 20)
  c.task.min_length = 50             # each batch draws its length T from
  c.task.max_length = 50             #   [min_length, max_length]
  c.task.regression_error = 'squared'  # a regression sequence is wrong when this error > 0.04:
                                     #   'squared' (authors' RNN.py) | 'absolute' (H&S 1997)

  # What the run reproduces (``declare_paper``; ``launch.py table`` reads it):
  # a table of tables.PAPER, its row, and each population row's method.
  c.paper = ml_collections.ConfigDict()
  c.paper.table = ''                 # '': no paper table (an ablation, a tool)
  c.paper.row = ''
  c.paper.methods = ()               # one per population row (one for a single run)
  c.paper.budget = {}                # {'field': ..., 'value': ...}: the paper's (or recipe's)
                                     #   training budget; a run given less is labelled reduced
  c.paper.task = {}                  # the row's task as declared (tasks.row_task); a run
                                     #   that changed it since is not filed under the row
  c.paper.max_params = 0             # > 0: the row's model size limit (a larger run is not filed)

  c.model = ml_collections.ConfigDict()
  c.model.cell = 'rnn'               # rnn | rnn_preact | lstm | gru
  c.model.hidden_size = 50
  c.model.num_layers = 1
  c.model.activation = 'tanh'        # tanh | sigmoid | relu (simple RNNs)
  c.model.init_scheme = 'smart_tanh' # sigmoid | basic_tanh | smart_tanh | orthogonal | default
  c.model.use_bias = True
  c.model.layer_norm = False         # normalise u W_in and h W_rec separately
  c.model.gate_bias = True           # LSTM forget bias 1, GRU reset bias -1 (False: 0)
  c.model.leaky_fraction = 0.0       # fraction of leaky-integration units (Bengio et al. 3.2)
  c.model.leak_range = (0.02, 0.2)   # their a_i ~ U(leak_range)
  c.model.input_layers = ()          # widths of feed-forward tanh layers before the recurrence
  c.model.sum_layer_outputs = False  # feed the head the sum of all layers' outputs
  c.model.learned_initial_state = False
  c.model.recurrent_dropout = 0.0    # variational dropout on h fed to the recurrence
  c.model.zoneout = 0.0
  c.model.dropout = 0.0              # on each layer's input and the head's input, not the recurrence
  c.model.dropout_on_inputs = True   # False: model.dropout spares the first layer's input (symbols)
  c.model.output = 'linear'          # linear | nade (RNN-NADE, music) | class_softmax | softmax (words)
  c.model.nade_hidden = 150          # NADE hidden units (output='nade')
  c.model.num_classes = 30           # frequency classes of the word softmax (output='class_softmax')
  c.model.compute_dtype = 'float32'  # float32 | bfloat16: the operands of every matrix product
                                     #   (results, states, loss, parameters: float32)

  c.optim = optim.default_config()

  c.reg = ml_collections.ConfigDict()
  c.reg.omega_alpha = 0.0            # weight of Omega (0 = off)
  c.reg.omega_schedule = 'constant'  # constant | inverse_t | inverse_2t (t counts from 1)
  c.reg.omega_schedule_unit = 'step' # step | epoch: what t counts
  c.reg.omega_form = 'squared'       # squared (ratio of squared norms, authors' code) | norms (eq. 9)
  c.reg.l1_weight = 0.0              # L1 on hidden activations (Bengio et al. 3.4)
  c.reg.bptt_clip = 0.0              # element-wise clip of dE/dx_t inside BPTT (Mikolov); 0 = off

  # Members trained at once as one vmapped program (training/population.py): the
  # product of `seeds` and `rows`, one value per name in
  # `hparams` (e.g. ('optim.learning_rate', 'reg.omega_alpha')).
  c.population = ml_collections.ConfigDict()
  c.population.seeds = ()            # empty: the single seed above
  c.population.hparams = ()
  c.population.rows = ()
  c.population.layout = 'auto'       # vmap | map (members in sequence) | auto: map on one CPU at B > 1

  # `python launch.py sweep` (orchestration/sweep.py): grids and random search over any
  # config field; numeric ones become population members.
  c.sweep = ml_collections.ConfigDict()
  c.sweep.grid = ()                  # ((key, (v1, v2, ...)), ...): every combination
  c.sweep.random = ()                # ((key, 'log_uniform'|'uniform', lo, hi), (key, 'choice', (...)))
  c.sweep.trials = 0                 # random draws
  c.sweep.seeds = ()                 # seeds of every trial (empty: the config's seed)
  c.sweep.seed = 0                   # of the random draws
  c.sweep.workers = 0                # 0: one pinned process per core on a CPU, 1 on an accelerator
  c.sweep.select = 'loss'            # loss | error: validation metric that ranks trials (lower is better)
  c.sweep.part_size = 0              # most members a unit (0: a group split over the workers only)
  # Where the parts run (orchestration/executors.py): 'local' (processes on this host),
  # 'ray' (Ray tasks) or 'slurm' (a Slurm job array through submitit); the
  # last two need requirements-cluster.txt. On ray and slurm, workers=0 means
  # one part per group (set sweep.workers to split each group further).
  c.sweep.executor = 'local'
  c.sweep.retries = 2                # reruns of a failed part before it is listed as failed
  c.sweep.cpus_per_part = 1          # ray/slurm: CPUs of each part (1: single-threaded XLA)
  c.sweep.gpus_per_part = 0          # ray/slurm: GPUs of each part
  c.sweep.ray_address = ''           # '': start Ray on this host; 'auto' or HOST:PORT: a running cluster
  c.sweep.slurm = ml_collections.ConfigDict()
  c.sweep.slurm.partition = ''       # '' : the cluster's default partition
  c.sweep.slurm.account = ''
  c.sweep.slurm.time_min = 24 * 60   # each part's time limit, minutes
  c.sweep.slurm.mem_gb = 0           # 0: the partition's default
  c.sweep.slurm.array_parallelism = 256   # parts running at once
  c.sweep.slurm.additional = ()      # more sbatch options: (('qos', 'high'), ...)
  c.sweep.slurm.cluster = 'slurm'    # 'local': submitit runs the jobs as local processes (tests)

  c.train = ml_collections.ConfigDict()
  c.train.num_steps = 100_000        # at most this many updates
  c.train.log_every = 500            # steps per compiled chunk and per metrics line
  c.train.eval_every = 2_000         # steps between validations (a multiple of log_every); 0:
                                     #   at the end of every epoch (corpora)
  c.train.eval_sequences = 10_000    # the papers' criterion uses 10,000 sequences
  c.train.test_sequences = 10_000
  c.train.eval_batch_size = 1_000
  c.train.eval_seed = 2013           # validation/test sequences: the same for every member and seed
  c.train.solved_error = 0.01        # solved: fewer than 1% wrong sequences
  c.train.stop_when_solved = True
  c.train.patience = 0               # >0: a member stops after this many validations without a
                                     #   new lowest loss (its best parameters are kept); 0: never
  c.train.patience_min_delta = 0.0   # ... a new lowest by more than this (in the loss's units:
                                     #   nats per scored step); smaller falls still move the best
  c.train.checkpoint_every_s = 60.0  # seconds between checkpoints
  c.train.halve_lr_on_rise = False   # corpora: halve the lr after an epoch whose train loss rose
  c.train.halve_lr_on_valid = False  # ... whose validation loss rose instead (needs eval_every=0)
  c.train.halve_lr_on_train_pass = False  # ... whose training loss rose, scored in a pass over
                                     #   the training set after the epoch, its parameters fixed
                                     #   (needs eval_every=0)
  # '' | 'rnnlm': Mikolov's RNNLM schedule on the validation loss (needs eval_every=0):
  #   once an epoch improves validation by less than anneal_min_improvement (relative),
  #   halve the lr after every epoch; the next such epoch stops the member; an epoch
  #   whose validation rose returns the member to its best parameters (training/train.py);
  #   'restore': an epoch whose validation is not a new lowest returns the member to its
  #   best parameters and halves its lr (patience stops it; selection.restore_anneal)
  c.train.anneal = ''
  c.train.anneal_min_improvement = 0.003   # RNNLM's -min-improvement 1.003
  # mean | sum_over_time: the cost that is clipped (training/train.py)
  c.train.loss_reduction = 'mean'
  # Truncation-length schedule for tasks read in chunks with carried state
  # (task.chunk): ((0, chunk), (start_step, chunk), ...), each phase's chunk
  # length from its start step on; empty = task.chunk throughout. Starts are
  # multiples of log_every and need num_steps > 0; each phase reads the data
  # from their beginning (state reset there) and compiles once (training/train.py).
  c.train.chunk_schedule = ()
  return c


def apply_method(c: ml_collections.ConfigDict, method: str, clip: float, alpha: float):
  """Sets clipping and Omega for one of ``METHODS``."""
  if method not in METHODS:
    raise ValueError(f'method={method!r} is not one of {", ".join(METHODS)}')
  c.optim.clip_norm = clip if method in ('sgd-c', 'sgd-cr') else 0.0
  c.reg.omega_alpha = alpha if method == 'sgd-cr' else 0.0


def method_rows(clip: float, alpha: float) -> tuple:
  """(method, clip threshold, Omega weight) of each method as numbers alone:
  SGD clips at a threshold no gradient reaches."""
  return (('sgd', optim.NO_CLIP, 0.0), ('sgd-c', clip, 0.0), ('sgd-cr', clip, alpha))


def apply_all_methods(c: ml_collections.ConfigDict, clip: float, alpha: float) -> tuple:
  """All three methods as members of one population: they share one program.
  Returns the methods in the order of ``population.rows``."""
  apply_method(c, 'sgd-cr', clip, alpha)
  rows = method_rows(clip, alpha)
  c.population.hparams = ('optim.clip_norm', 'reg.omega_alpha')
  c.population.rows = tuple((cl, al) for _, cl, al in rows)
  return tuple(m for m, _, _ in rows)


def declare_paper(c: ml_collections.ConfigDict, table: str, row: str, methods,
                  companion: bool = True, budget: tuple[str, int] | None = None,
                  max_params: int = 0) -> None:
  """Declares what the run reproduces: ``table`` (a key of ``tables.PAPER``),
  its ``row`` and the method of each population row, in their order, or one
  method for them all (a run without rows, or a grid of one method). A GRU or LSTM (``apply_cell``) fills the
  companion row named after the paper's, e.g. 'nottingham/lstm', unless
  ``companion=False`` (a table whose methods are the cells themselves).
  ``budget``: (config field, value), the budget the reproduction calls for,
  e.g. ('task.epochs', 30); the field one of ``reporting.tables.BUDGET_UNITS``
  ('task.epochs', 'train.num_steps'); ``launch.py table`` labels a run given
  less as reduced, with what was cut. ``max_params``: the row's limit on
  the model's parameters (a study's sizes), 0 for none. The task as it is now
  (``tasks.row_task``: name, kwargs, a problem's lengths) is recorded too: a
  run whose task or size is changed afterwards (an override flag) is not filed
  under the row (``launch.py table`` says why; the run says so when it starts).
  Call it last, when the task, model and population are final."""
  methods = (methods,) if isinstance(methods, str) else tuple(methods)
  rows = max(1, len(c.population.rows)) if c.population.hparams else 1
  if len(methods) not in (1, rows):
    raise ValueError(f'declare_paper: {len(methods)} methods {methods} for {rows} '
                     'population rows; give one method per row, or one for them all')
  c.paper.table = table
  c.paper.row = row if c.model.cell == 'rnn' or not companion else f'{row}/{c.model.cell}'
  c.paper.methods = methods
  if budget is not None:
    field, value = budget
    if field not in ('task.epochs', 'train.num_steps'):    # reporting.tables.BUDGET_UNITS
      raise ValueError(f'declare_paper: budget field {field!r} is not task.epochs or '
                       'train.num_steps (the budgets launch.py table can compare)')
    c.paper.budget = {'field': field, 'value': value}
  if isinstance(max_params, bool) or not isinstance(max_params, int) or max_params < 0:
    raise ValueError(f'declare_paper: max_params={max_params!r} must be an integer >= 0 (0: none)')
  c.paper.max_params = max_params
  c.paper.task = tasks.row_task(c.task)


CELLS = ('rnn', 'gru', 'lstm')


def apply_cell(c: ml_collections.ConfigDict, cell: str):
  """The companion rows beside a paper's table: the same task, data and
  techniques (clipping, Omega, schedules) with a GRU or an LSTM of the same
  width instead of the paper's simple RNN: tanh, the usual initialisation
  (orthogonal recurrence, Glorot inputs) and the gate biases (forget 1,
  reset -1), which the gates need even where the paper's RNN has none.
  ``cell='rnn'`` leaves the paper's model as it is."""
  if cell not in CELLS:
    raise ValueError(f'cell={cell!r} is not one of {", ".join(CELLS)} (the companion rows\' '
                     'cells: the paper\'s RNN, a GRU or an LSTM)')
  if cell == 'rnn':
    return
  c.model.cell = cell
  c.model.activation = 'tanh'
  c.model.init_scheme = 'default'
  c.model.use_bias = True
  c.model.leaky_fraction = 0.0


def apply_smoke(c: ml_collections.ConfigDict):
  """Shrinks a run to well under a minute on 2 CPU cores (tests and CI)."""
  c.smoke = True
  c.train.num_steps = 60
  c.train.log_every = 20
  c.train.eval_every = 60
  c.train.eval_sequences = 200
  c.train.test_sequences = 200
  c.train.eval_batch_size = 100
  c.task.min_length = min(c.task.min_length, 20)
  c.task.max_length = min(c.task.max_length, 25)
