"""A run stopped and resumed is the run that never stopped, bit for bit,
with every piece of state that outlives a step in play.

The other resume tests train plain SGD, whose optimiser keeps no state, and
compare a final number. Here a tiny music run (truncated BPTT with the
hidden state carried from chunk to chunk) uses simplified Nesterov momentum
(Bengio et al. 2013, eq. 6-7) or Adam, the halving rule on the epoch's
training loss (``halve_on_rise``) and a clipping threshold taken from the
mean norm of the first updates (``clip_by_global_norm_auto``). It is stopped
by the Ctrl-C path (a checkpoint, then ``Interrupted``) at a step chosen so
that each of those is mid-way: inside the auto-clip warm-up, mid-epoch for
the halving rule's running mean, and mid-piece, so the carried state feeds
the next update. The resumed run must restore exactly the state it stopped
with, and end with the uninterrupted run's train state (parameters,
optimiser state, carry, key, ...), bit-equal, and its metrics.jsonl lines
and result.json, all but the wall-clock fields.
"""

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from experiments import music
from tests.test_music_train import toy_corpus
from training import records
from training import train
from training.errors import Interrupted

# Three training pieces of 20 frames in chunks of 5, one piece an update: an
# epoch is 12 updates and every piece starts at an update that is a multiple
# of 4 into its epoch, whatever the shuffled order.
PIECES, CHUNK, EPOCHS = [20, 20, 20], 5, 4
PER_EPOCH = 12
LOG_EVERY = 6
AUTO_STEPS = 32      # the threshold is the mean norm of updates 0..31
STOP_AT = 30         # inside the warm-up; 6 into epoch 2 (mid-epoch, mid-piece)
# Fields of the records that measure time, not the run.
WALL_CLOCK = {'steps_per_s', 'wall_time_s'}


def config(optimizer: str, learning_rate: float):
  """A music run whose rate halves once, at step 36 (the end of the epoch the
  stop falls in), and whose threshold clips from step 32 on (checked)."""
  c = music.get_config('smoke,method=sgd')
  c.model.hidden_size = 8
  c.task.chunk = CHUNK
  c.task.epochs = EPOCHS
  c.train.num_steps = 0                 # EPOCHS epochs
  c.train.log_every = LOG_EVERY
  c.train.eval_every = 0                # validation at the end of every epoch
  c.train.halve_lr_on_rise = True       # (the music configs' default) on the training loss
  c.optim.name = optimizer
  c.optim.learning_rate = learning_rate
  c.optim.momentum = 0.9
  c.optim.clip_norm = 0.0
  c.optim.clip_norm_auto_steps = AUTO_STEPS
  c.optim.clip_norm_auto_factor = 0.5   # low enough that the later updates are clipped
  return c


def host_copy(state) -> dict:
  """Every leaf of a train state as a host array (a key as its key data),
  by its path: a copy, since the training chunk donates the state."""
  def leaf(x):
    if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
      x = jax.random.key_data(x)
    return np.array(x, copy=True)
  return {jax.tree_util.keystr(path): leaf(x)
          for path, x in jax.tree_util.tree_leaves_with_path(state)}


def assert_bit_equal(got: dict, want: dict, what: str):
  assert got.keys() == want.keys(), what
  differ = [k for k in want if (got[k].dtype, got[k].shape, got[k].tobytes())
            != (want[k].dtype, want[k].shape, want[k].tobytes())]
  assert not differ, f'{what}: these leaves differ: {differ}'


def leaf(state: dict, name: str) -> np.ndarray:
  """The one leaf whose path ends in ``name`` (e.g. '.mean_norm')."""
  found = [v for k, v in state.items() if k.endswith(name)]
  assert len(found) == 1, (name, [k for k in state if k.endswith(name)])
  return found[0]


def leaves_under(state: dict, name: str) -> list[np.ndarray]:
  """The leaves whose path passes through the field ``name`` (e.g. '.velocity')."""
  found = [v for k, v in state.items() if f'{name}[' in k or f'{name}.' in k]
  assert found, name
  return found


def timeless(workdir) -> tuple[list[dict], dict]:
  """The run's metrics lines and result, without the wall-clock fields."""
  lines = [{k: v for k, v in r.items() if k not in WALL_CLOCK}
           for r in records.read_jsonl(str(workdir / 'metrics.jsonl'))]
  result = json.loads((workdir / 'result.json').read_text())
  return lines, {k: v for k, v in result.items() if k not in WALL_CLOCK}


class Hooks:
  """Deterministic hooks into ``train``: a Ctrl-C noted right after the chunk
  that ends at ``stop_at`` (the run loop then checkpoints and raises
  ``Interrupted``, as for a real one), and copies of the train state where
  it stops, where a run restores it, and where it ends."""

  def __init__(self, monkeypatch):
    self.stop_at, self.interrupts = None, []
    self.stopped = self.restored = self.final = None
    hooks = self
    run_chunk, restore, summarise = train._run_chunk, train._restore_or_init, train._summarise

    class NotedInterrupt(train._Interrupt):
      def __enter__(self):
        hooks.interrupts.append(self)
        return super().__enter__()

    def run_chunk_then_stop(run, *args, **kwargs):
      out = run_chunk(run, *args, **kwargs)
      if run.step == hooks.stop_at:
        hooks.stopped = host_copy(run.state)
        hooks.interrupts[-1].signal = 'SIGINT'
      return out

    def restore_or_init(*args, **kwargs):
      run = restore(*args, **kwargs)
      hooks.restored = host_copy(run.state)
      return run

    def summarise_at_the_end(run, *args, **kwargs):
      hooks.final = host_copy(run.state)
      return summarise(run, *args, **kwargs)

    monkeypatch.setattr(train, '_Interrupt', NotedInterrupt)
    monkeypatch.setattr(train, '_run_chunk', run_chunk_then_stop)
    monkeypatch.setattr(train, '_restore_or_init', restore_or_init)
    monkeypatch.setattr(train, '_summarise', summarise_at_the_end)


# The everyday suite resumes Nesterov; Adam's moments go through the same
# restore (one more compiled program, about as long again): slow.
@pytest.mark.parametrize('optimizer,learning_rate,moments', [
    ('nesterov', 1.0, ('.velocity',)),
    pytest.param('adam', 0.03, ('.mu', '.nu'), marks=pytest.mark.slow),
])
def test_a_resumed_run_is_bit_equal_to_the_uninterrupted_one(tmp_path, monkeypatch, optimizer,
                                                             learning_rate, moments):
  """Stopped at step 30 of 48 and resumed: the state restored is the state
  at the stop, and the final state, metrics lines and result are the
  uninterrupted run's (the setting is checked to leave nothing trivial)."""
  rolls = toy_corpus(3, PIECES)
  hooks = Hooks(monkeypatch)
  train.train_and_evaluate(config(optimizer, learning_rate), str(tmp_path / 'straight'),
                           data=rolls)
  straight = hooks.final

  hooks.stop_at = STOP_AT
  with pytest.raises(Interrupted, match=f'at step {STOP_AT} of {EPOCHS * PER_EPOCH}'):
    train.train_and_evaluate(config(optimizer, learning_rate), str(tmp_path / 'resumed'),
                             data=rolls)
  stopped, hooks.stop_at = hooks.stopped, None
  train.train_and_evaluate(config(optimizer, learning_rate), str(tmp_path / 'resumed'),
                           data=rolls)

  # The setting: at the stop every kind of state is mid-way, so a restore that
  # re-created any of it would change what follows.
  assert int(leaf(stopped, '.step')[0]) == STOP_AT
  assert leaf(stopped, '.mean_norm')[0] > 0                 # the running mean of the norms
  assert np.isinf(leaf(stopped, '.threshold')[0])          # still warming up ...
  assert np.isfinite(leaf(straight, '.threshold')[0])      # ... and it clips later:
  lines, _ = timeless(tmp_path / 'straight')
  train_lines = {r['step']: r for r in lines if r['split'] == 'train'}
  assert train_lines[STOP_AT]['clipped'] == 0 and train_lines[EPOCHS * PER_EPOCH]['clipped'] > 0
  for name in moments:
    assert all(np.any(v != 0) for v in leaves_under(stopped, name)), name
  assert leaf(stopped, '.halving_weight')[0] > 0           # the epoch's loss half summed
  assert np.isfinite(leaf(stopped, '.halving_previous')[0])  # the last epoch's, to beat
  assert leaf(stopped, '.halving_scale')[0] == 1.0
  assert train_lines[STOP_AT]['learning_rate'] == pytest.approx(learning_rate, rel=1e-6)
  assert train_lines[EPOCHS * PER_EPOCH]['learning_rate'] == pytest.approx(  # halved at 36
      learning_rate / 2, rel=1e-6)
  carry = leaves_under(stopped, '.carry')
  assert carry and all(np.any(c != 0) for c in carry)
  key = jax.random.wrap_key_data(leaf(stopped, '.key')[0])
  task = train.build(config(optimizer, learning_rate), data=rolls).task
  assert not np.any(np.asarray(task.train_batch(key, STOP_AT)['reset']))   # it continues a piece

  # The resumed run starts from the state it stopped with and ends as the
  # uninterrupted run did.
  assert_bit_equal(hooks.restored, stopped, 'the restored state')
  assert_bit_equal(hooks.final, straight, 'the final state')
  assert timeless(tmp_path / 'resumed') == timeless(tmp_path / 'straight')
  assert sum(r['split'] == 'train' for r in timeless(tmp_path / 'resumed')[0]) == (
      EPOCHS * PER_EPOCH // LOG_EVERY)
