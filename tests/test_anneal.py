"""``train.anneal='rnnlm'`` (Mikolov's RNNLM learning-rate schedule on the
validation loss) and ``--branch_from`` (a new run from another run's
checkpoint): the rule against hand-worked epochs, its effect on a population's
state, and a real run replayed from its own logged validation losses in plain
Python."""

import json
import math
import os

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optim
from experiments import music
from tests.test_music_train import toy_corpus
from training import selection
from training import train
from training.errors import RunError


def test_the_rule_on_hand_worked_epochs():
  # One member, min_improvement 0.003: 1.9 * 1.003 = 1.9057 <= 2.0 (enough);
  # 1.899 * 1.003 = 1.9047 > 1.9 (short: annealing starts, halve); 1.80 is
  # enough but annealing goes on (halve); 1.799 * 1.003 > 1.80 (short again: stop).
  previous, annealing = np.array([math.inf]), np.array([False])
  expected = [  # (loss, halve, stop, rose)
      (2.0, False, False, False), (1.9, False, False, False), (1.899, True, False, False),
      (1.80, True, False, False), (1.799, False, True, False)]
  for loss, *want in expected:
    halve, stop, rose, annealing = selection.rnnlm_anneal([loss], previous, annealing, 0.003)
    assert [bool(halve[0]), bool(stop[0]), bool(rose[0])] == want, loss
    previous = np.array([loss])


def test_the_rule_member_by_member():
  previous = np.array([2.0, 2.0, 2.0, 2.0])
  annealing = np.array([False, False, True, True])
  losses = [1.5, 2.1, 1.5, float('nan')]
  halve, stop, rose, annealing = selection.rnnlm_anneal(losses, previous, annealing, 0.003)
  np.testing.assert_array_equal(halve, [False, True, True, False])
  np.testing.assert_array_equal(stop, [False, False, False, True])    # NaN is short
  np.testing.assert_array_equal(rose, [False, True, False, True])     # NaN counts as a rise
  np.testing.assert_array_equal(annealing, [False, True, True, True])


@flax.struct.dataclass
class _State:
  params: dict
  opt_state: optax.OptState
  active: jax.Array


def three_members(annealing):
  """A run of 3 members (rates 0.1, 0.2, 0.4; the third not training), each
  away from its best parameters, its previous validation loss 2.0."""
  opt = optax.inject_hyperparams(optax.sgd)(learning_rate=0.1)
  params = {'w': jnp.array([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])}
  opt_state = optim.set_hyperparams(jax.vmap(opt.init)(params),
                                    learning_rate=jnp.array([0.1, 0.2, 0.4]))
  best = selection.BestOnValid({'w': jnp.array([[9.0, 9.0], [8.0, 8.0], [7.0, 7.0]])}, 3)
  return train._Run(state=_State(params, opt_state, jnp.array([True, True, False])), best=best,
                    solved_at=[None] * 3, nonfinite=np.zeros(3, bool), elapsed=0.0,
                    last_loss=np.zeros(3), annealing=annealing,
                    anneal_previous=np.array([2.0, 2.0, 2.0]))


def test_a_validation_halves_rates_and_returns_risen_members_to_their_best():
  run = three_members(annealing=np.array([True, False, True]))
  tc = ml_config(anneal='rnnlm', anneal_min_improvement=0.003)
  # member 0 anneals and improved: halve; member 1 rose: back to its best,
  # starts annealing (halve); member 2 is not training: untouched
  stop = train._anneal(run, [1.0, 2.5, 2.5], np.array([True, True, False]), tc)
  np.testing.assert_array_equal(stop, [False, False, False])
  np.testing.assert_allclose(optax.tree_utils.tree_get(run.state.opt_state, 'learning_rate'),
                             [0.05, 0.1, 0.4])
  np.testing.assert_array_equal(run.state.params['w'], [[1, 1], [8, 8], [3, 3]])
  np.testing.assert_array_equal(run.annealing, [True, True, True])
  np.testing.assert_array_equal(run.anneal_previous, [1.0, 2.5, 2.0])


def test_the_restore_rule_on_hand_worked_epochs():
  # best so far: inf, 2.0, 1.9, 1.9 (2.1 rose), 1.9 (1.9 equal: rose), 1.8, 1.8 (NaN rose)
  best = np.array([math.inf])
  expected = [(2.0, False), (1.9, False), (2.1, True), (1.9, True), (1.8, False),
              (float('nan'), True), (1.85, True)]
  for loss, want in expected:
    rose, new_best = selection.restore_anneal([loss], best)
    assert bool(rose[0]) == want, loss
    assert new_best[0] == (best[0] if want else loss)
    best = new_best


def test_a_restore_validation_halves_and_returns_only_the_members_that_rose():
  run = three_members(annealing=np.zeros(3, bool))
  # member 0 improved: untouched; member 1 rose: back to its best, rate halved;
  # member 2 is not training: untouched though its loss rose
  stop = train._anneal(run, [1.5, 2.5, 2.5], np.array([True, True, False]),
                       ml_config(anneal='restore'))
  np.testing.assert_array_equal(stop, [False, False, False])
  np.testing.assert_allclose(optax.tree_utils.tree_get(run.state.opt_state, 'learning_rate'),
                             [0.1, 0.1, 0.4])
  np.testing.assert_array_equal(run.state.params['w'], [[1, 1], [8, 8], [3, 3]])
  np.testing.assert_array_equal(run.anneal_previous, [1.5, 2.0, 2.0])


def ml_config(**fields):
  import ml_collections
  return ml_collections.ConfigDict(fields)


def annealed_music_config(epochs: int = 10):
  config = music.get_config('smoke,method=all')
  with config.unlocked():
    config.task.chunk = 5
    config.task.epochs = epochs
    config.train.num_steps = 0
    config.train.halve_lr_on_rise = False
    config.train.log_every = 7            # one line an epoch (7 steps)
    config.train.eval_every = 0
    config.train.anneal = 'rnnlm'
    config.train.anneal_min_improvement = 0.01
  return config


def replay(valid: list[float], lr0: float, min_improvement: float):
  """The schedule in plain Python: the rate each epoch trains with, and the
  number of validations before the member stops (None: it never does)."""
  rates, lr, annealing, previous = [lr0], lr0, False, math.inf
  for e, loss in enumerate(valid):
    short = not loss * (1 + min_improvement) <= previous
    if short and annealing:
      return rates, e + 1
    annealing |= short
    if annealing:
      lr /= 2
    rates.append(lr)
    previous = loss
  return rates, None


def annealed_run(folder, anneal: str):
  """Trains ``annealed_music_config`` with ``train.anneal=anneal``; returns the
  config, its metrics' rows, and per member (validation losses, train rows)."""
  config = annealed_music_config()
  with config.unlocked():
    config.train.anneal = anneal
  train.train_and_evaluate(config, str(folder), data=toy_corpus(7, [12, 7, 9]))
  rows = [json.loads(l) for l in (folder / 'metrics.jsonl').read_text().splitlines()]
  members = [([r['loss'] for r in rows if r['split'] == 'valid' and r['member'] == i],
              [r for r in rows if r['split'] == 'train' and r['member'] == i])
             for i in sorted({r['member'] for r in rows})]
  return config, rows, members


def test_a_run_follows_the_schedule_replayed_from_its_validation_losses(tmp_path):
  config, rows, members = annealed_run(tmp_path, 'rnnlm')
  stops = 0
  for i, (valid, train_rows) in enumerate(members):
    rates, stopped = replay(valid, train_rows[0]['learning_rate'], 0.01)
    # each epoch's train line (written before its validation) logs the rate it trained with
    for e, r in enumerate(train_rows[:len(rates)]):
      assert r['learning_rate'] == pytest.approx(rates[e]), (i, e)
    if stopped is not None:      # (a stopped member is still validated, never trained)
      stops += 1
      assert train_rows[stopped - 1]['active'], i
      assert all(not r['active'] for r in train_rows[stopped:]), i
    else:
      assert len(valid) == config.task.epochs, i
  assert stops > 0 and any(r['learning_rate'] < train_rows[0]['learning_rate']
                           for r in rows if r['split'] == 'train')


def test_a_restore_run_halves_after_every_validation_that_did_not_improve(tmp_path):
  _, _, members = annealed_run(tmp_path, 'restore')
  halvings = 0
  for i, (valid, train_rows) in enumerate(members):
    lr, best = train_rows[0]['learning_rate'], math.inf
    for e, r in enumerate(train_rows):     # the rate epoch e trained with
      assert r['learning_rate'] == pytest.approx(lr), (i, e)
      if valid[e] < best:
        best = valid[e]
      else:
        lr, halvings = lr / 2, halvings + 1
  assert halvings > 0


def test_anneal_needs_validation_every_epoch():
  config = annealed_music_config()
  with config.unlocked():
    config.train.eval_every = 14
  with pytest.raises(ValueError, match='anneal'):
    train.build(config, data=toy_corpus(0, [12, 7]))
  with config.unlocked():
    config.train.eval_every = 0
    config.train.anneal = 'cosine'
  with pytest.raises(ValueError, match="'rnnlm'"):
    train.build(config, data=toy_corpus(0, [12, 7]))


@pytest.mark.slow   # three short runs end to end
def test_a_branch_starts_from_the_source_checkpoint_with_its_history(tmp_path):
  rolls = toy_corpus(3, [12, 7, 9])
  config = music.get_config('smoke')
  with config.unlocked():
    config.task.chunk = 5
    config.task.epochs = 2             # 7 steps an epoch: a checkpoint at 14
    config.train.num_steps = 0
    config.train.halve_lr_on_rise = False
    config.train.log_every = 7
    config.train.eval_every = 0
    config.train.anneal = 'rnnlm'      # logs the rate; every epoch after the first
    config.train.anneal_min_improvement = 100.0   # is short: halved at 14
  lr = config.optim.learning_rate
  source = str(tmp_path / 'source')
  train.train_and_evaluate(config, source, data=rolls)
  src = [json.loads(l) for l in (tmp_path / 'source' / 'metrics.jsonl').read_text().splitlines()]

  def branch(name, **fields):
    c = config.copy_and_resolve_references()
    with c.unlocked():
      c.task.epochs = 4
      for k, v in fields.items():
        c.optim[k] = v
    train.train_and_evaluate(c, str(tmp_path / name), data=rolls, branch_from=source + '@14')
    rows = [json.loads(l) for l in (tmp_path / name / 'metrics.jsonl').read_text().splitlines()]
    first = [r for r in rows if r['split'] == 'train' and r['step'] == 21][0]
    origin = json.load(open(tmp_path / name / 'config.json'))['origin']['branched_from']
    return c, rows, first, origin

  # nothing changed but the budget: the rate goes on as the source's schedule left it
  _, rows, first, origin = branch('same')
  assert origin == dict(workdir=source, step=14, changed=[])
  assert first['learning_rate'] == pytest.approx(lr / 2)
  # the source's records up to its checkpoint (not its test), then the branch's own
  assert [r for r in rows if r['step'] <= 14] == [r for r in src if r['split'] != 'test']
  # a new rate: the config's, not the one in the source's checkpoint
  longer, rows, first, origin = branch('new_rate', learning_rate=lr / 8)
  assert origin['changed'] == ['optim.learning_rate']
  assert first['learning_rate'] == pytest.approx(lr / 8)
  assert json.load(open(tmp_path / 'new_rate' / 'result.json'))['step'] > 14
  # a branch that crashed before its own first checkpoint: the rerun (without
  # --branch_from, which is refused now) still starts at the branch's rate
  crashed = str(tmp_path / 'crashed')
  run_chunk = train._run_chunk

  def crash(*args, **kwargs):
    raise RuntimeError('simulated crash')
  train._run_chunk = crash
  try:
    with pytest.raises(RuntimeError, match='simulated crash'):
      train.train_and_evaluate(longer, crashed, data=rolls, branch_from=source + '@14')
  finally:
    train._run_chunk = run_chunk
  train.train_and_evaluate(longer, crashed, data=rolls)
  again = [json.loads(l) for l in (tmp_path / 'crashed' / 'metrics.jsonl').read_text().splitlines()]
  assert [r for r in again if r['split'] == 'train' and r['step'] > 14][0][
      'learning_rate'] == pytest.approx(lr / 8)
  # a change of the state's shapes is refused in one line, not an orbax traceback
  wider = config.copy_and_resolve_references()
  with wider.unlocked():
    wider.model.hidden_size = config.model.hidden_size + 3
  # (read from the checkpoint's metadata before any array: a failed restore left orbax's reads
  # in flight, which printed some 60 lines of TensorStore errors after the message)
  with pytest.raises(RunError, match='the checkpoint does not fit this config, whose changes '
                                     r'\(model.hidden_size\).*\(state/\S+: this config makes '
                                     r'float32\[.*\], the checkpoint holds float32\['):
    train.train_and_evaluate(wider, str(tmp_path / 'wider'), data=rolls, branch_from=source)
  assert not (set(os.listdir(tmp_path / 'wider')) & {'checkpoints', 'config.json', 'metrics.jsonl'})
  # the branch's origin survives a rerun (which resumes it)
  train.train_and_evaluate(longer, str(tmp_path / 'new_rate'), data=rolls)
  assert json.load(open(tmp_path / 'new_rate' / 'config.json'))['origin']['branched_from'] == origin
  with pytest.raises(RunError, match='holds a run already'):
    train.train_and_evaluate(longer, str(tmp_path / 'new_rate'), data=rolls, branch_from=source)
  with pytest.raises(RunError, match='no checkpoint at step'):
    train.train_and_evaluate(longer, str(tmp_path / 'other'), data=rolls,
                             branch_from=source + '@3')


@pytest.mark.slow   # two short runs end to end
def test_a_branch_judges_its_first_epoch_against_the_best_when_the_source_had_no_schedule(
    tmp_path):
  rolls = toy_corpus(3, [12, 7, 9])
  config = music.get_config('smoke')
  with config.unlocked():
    config.task.chunk = 5
    config.task.epochs = 2
    config.train.num_steps = 0
    config.train.halve_lr_on_rise = False
    config.train.log_every = 7
    config.train.eval_every = 0
  source, branch = str(tmp_path / 'source'), str(tmp_path / 'branch')
  train.train_and_evaluate(config, source, data=rolls)
  longer = config.copy_and_resolve_references()
  with longer.unlocked():
    longer.task.epochs = 4
    longer.train.anneal = 'rnnlm'
  train.train_and_evaluate(longer, branch, data=rolls, branch_from=source)
  src = [json.loads(l) for l in (tmp_path / 'source' / 'metrics.jsonl').read_text().splitlines()]
  rows = [json.loads(l) for l in (tmp_path / 'branch' / 'metrics.jsonl').read_text().splitlines()]
  best = min(r['loss'] for r in src if r['split'] == 'valid')
  valid21 = [r['loss'] for r in rows if r['split'] == 'valid' and r['step'] == 21][0]
  lr = {r['step']: r['learning_rate'] for r in rows if r['split'] == 'train' and r['step'] > 14}
  halved = not valid21 * 1.003 <= best
  assert lr[21] == pytest.approx(config.optim.learning_rate)
  assert lr[28] == pytest.approx(lr[21] / (2 if halved else 1))
