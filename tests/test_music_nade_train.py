"""RNN-NADE through the trainer (Bengio et al. 2013 sec. 3.3, Table 1).

The trainer's NADE loss equals a plain numpy RNN + NADE; its probabilities
over all 2^D frames sum to one; whole-piece evaluation with the state
carried equals a direct per-piece computation; every method of
``experiments/music_bengio.py`` loads with ``smoke`` and trains on a tiny
synthetic corpus; ``sweep.check`` accepts each method's sweep.
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from orchestration import sweep
import tasks
from training import train
from experiments import music_bengio
from models.rnn import RecurrentNetwork


class _Stub:
  """The part of a task that ``train.Trainer.loss_fn`` reads."""
  kind = 'nade'
  carries = False


def tiny_steps(keys=5, hidden=4, nade_hidden=3):
  model = RecurrentNetwork(output_size=keys, hidden_size=hidden, activation='tanh',
                           init_scheme='basic_tanh', output='nade', nade_hidden=nade_hidden)
  steps = train.Trainer(model=model, optimizer=None, task=_Stub(), use_omega=False,
                      use_l1=False, use_bptt_clip=False)
  x = jnp.zeros((3, 2, keys))
  params = model.init(jax.random.key(0), x, targets=x)['params']
  # non-zero biases so that every term of the NADE is exercised
  params['nade'] = dict(params['nade'], b_v=0.3 * jnp.arange(keys, dtype=jnp.float32) - 0.5,
                        b_h=0.2 * jnp.ones(nade_hidden))
  return steps, params


def numpy_log_prob(params, inputs, targets):
  """log p(targets[t] | inputs[<=t]) [T, B] in float64: a tanh RNN from h = 0,
  then a NADE whose biases are affine in h (a loop over keys)."""
  p = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
  rnn, nd = p['layer_0'], p['nade']
  sig = lambda z: 1.0 / (1.0 + np.exp(-z))
  steps, batch, keys = targets.shape
  h = np.zeros((batch, rnn['w_rec'].shape[0]))
  out = np.zeros((steps, batch))
  for t in range(steps):
    h = np.tanh(inputs[t] @ rnn['w_in'] + rnn['b'] + h @ rnn['w_rec'])
    b_v = nd['b_v'] + h @ nd['w_hv']
    a = nd['b_h'] + h @ nd['w_hh']
    for d in range(keys):
      prob = sig(b_v[:, d] + sig(a) @ nd['v'][:, d])
      v = targets[t, :, d]
      out[t] += v * np.log(prob) + (1 - v) * np.log(1 - prob)
      a = a + v[:, None] * nd['w'][d]
  return out


def test_trainer_nade_loss_equals_numpy_nade():
  steps, params = tiny_steps()
  rng = np.random.default_rng(0)
  frames = (rng.random((5, 2, 5)) < 0.4).astype(np.float32)
  batch = dict(inputs=jnp.asarray(frames[:-1]), targets=jnp.asarray(frames[1:]),
               mask=jnp.asarray([[1, 1], [1, 1], [1, 1], [1, 0]], jnp.float32))
  hp = dict(omega_alpha=0.0, l1_weight=0.0, bptt_clip=0.0)
  loss_fn = jax.jit(lambda p: steps.loss_fn(p, None, batch, hp, jax.random.key(1))[:2])
  total, (loss, _, _, _) = loss_fn(params)
  want = -numpy_log_prob(params, frames[:-1], frames[1:])
  mask = np.asarray(batch['mask'])
  np.testing.assert_allclose(float(loss), np.sum(want * mask) / mask.sum(), rtol=1e-5)
  np.testing.assert_allclose(float(total), float(loss))
  # and its gradient reaches the RNN and every NADE parameter
  grads = jax.jit(jax.grad(lambda p: loss_fn(p)[0]))(params)
  assert all(float(jnp.abs(g).sum()) > 0 for g in jax.tree.leaves(grads))


def test_nade_probabilities_over_all_frames_sum_to_one():
  keys = 5
  steps, params = tiny_steps(keys=keys)
  every = np.array(list(itertools.product([0, 1], repeat=keys)), np.float32)   # [2^D, D]
  rng = np.random.default_rng(2)
  inputs = np.broadcast_to((rng.random((3, 1, keys)) < 0.5), (3, len(every), keys))
  targets = np.broadcast_to(every, (3,) + every.shape)
  outputs, _, _ = steps.apply(params, jnp.asarray(inputs, jnp.float32), None, None,
                              targets=jnp.asarray(targets))
  log_p = -tasks.per_step_loss(outputs, dict(targets=jnp.asarray(targets)), 'nade')
  np.testing.assert_allclose(np.exp(np.asarray(log_p, np.float64)).sum(1), 1.0, rtol=1e-5)


def random_rolls(rng, lengths):
  return [(rng.random((n, 88)) < 0.05).astype(np.uint8) for n in lengths]


def test_nade_whole_piece_evaluation_equals_direct_computation():
  rng = np.random.default_rng(3)
  rolls = {s: random_rolls(rng, [7, 23, 12]) for s in ('train', 'valid', 'test')}
  problem = tasks.music.MusicTask('toy', rolls, batch_size=2, chunk=5, output='nade')
  # the task hands the model the data's most notes in a frame (segments, not a scan)
  most = max(sum(int(k) for k in frame) for pieces in rolls.values() for r in pieces
             for frame in r)
  assert problem.model_kwargs == {'nade_max_notes': most} and most >= 5
  assert tasks.music.MusicTask('toy', rolls, batch_size=2, chunk=5).model_kwargs == {}
  model = RecurrentNetwork(output_size=88, hidden_size=6, init_scheme='basic_tanh',
                           output='nade', nade_hidden=4, **problem.model_kwargs)
  x = jnp.zeros((5, 2, 88))
  params = model.init(jax.random.key(0), x, targets=x)['params']
  steps = train.Trainer(model=model, optimizer=None, task=problem, use_omega=False,
                      use_l1=False, use_bptt_clip=False)
  evaluate = problem.evaluator(steps.apply, steps.initial_carry, None, jax.random.key(0))
  got = evaluate(jax.tree.map(lambda a: a[None], params), 'valid')[0]
  total = frames = 0
  for piece in rolls['valid']:
    p = piece.astype(np.float32)[:, None, :]
    total -= numpy_log_prob(params, p[:-1], p[1:]).sum()
    frames += len(piece) - 1
  assert got['count'] == frames
  np.testing.assert_allclose(got['loss'], total / frames, rtol=1e-5)
  assert 0.0 <= got['error'] <= 1.0


@pytest.mark.slow
def test_validation_may_draw_fewer_accuracy_samples_than_test():
  """``train.valid_accuracy_samples`` sets the draws for every split but test;
  test keeps ``train.accuracy_samples``."""
  import ml_collections
  rng = np.random.default_rng(5)
  rolls = {s: random_rolls(rng, [9, 14]) for s in ('train', 'valid', 'test')}
  problem = tasks.music.MusicTask('toy', rolls, batch_size=2, chunk=5, output='nade')
  model = RecurrentNetwork(output_size=88, hidden_size=6, init_scheme='basic_tanh',
                           output='nade', nade_hidden=4)
  x = jnp.zeros((5, 2, 88))
  params = jax.tree.map(lambda a: a[None],
                        model.init(jax.random.key(1), x, targets=x)['params'])
  steps = train.Trainer(model=model, optimizer=None, task=problem, use_omega=False,
                        use_l1=False, use_bptt_clip=False)

  def evaluate(split, **fields):
    tc = ml_collections.ConfigDict(fields)
    return problem.evaluator(steps.apply, steps.initial_carry, tc, jax.random.key(0))(
        params, split)[0]

  mixed = dict(accuracy_samples=8, valid_accuracy_samples=1)
  assert evaluate('valid', **mixed) == evaluate('valid', accuracy_samples=1)
  assert evaluate('test', **mixed) == evaluate('test', accuracy_samples=8)
  # one draw and eight are different estimates of the same expectation
  assert evaluate('valid', accuracy_samples=1)['error'] != evaluate('valid', accuracy_samples=8)['error']
  assert evaluate('valid', **mixed)['loss'] == evaluate('valid', accuracy_samples=8)['loss']


@pytest.fixture
def toy_corpus(tmp_path):
  """A tiny piano-roll corpus (``tasks.music.load``'s form), written into tmp_path and
  read back, to pass as ``data`` in place of the real ones."""
  rng = np.random.default_rng(4)
  path = tmp_path / 'toy_rolls.npz'
  np.savez(path, **{f'{s}_{i}': r for s in ('train', 'valid', 'test')
                    for i, r in enumerate(random_rolls(rng, [25, 40, 18]))})
  with np.load(path) as f:
    rolls = {s: [f[f'{s}_{i}'] for i in range(3)] for s in ('train', 'valid', 'test')}
  return rolls


@pytest.mark.slow
def test_every_method_loads_and_trains(toy_corpus, tmp_path):
  for method in music_bengio.METHODS:
    config = music_bengio.get_config(f'method={method},smoke')
    train.check_config(config, toy_corpus)
    steps = train.build(config, data=toy_corpus)
    assert steps.task.kind == ('nade' if method.startswith('nade') else 'bernoulli')
    hp = dict(omega_alpha=0.0, l1_weight=float(config.reg.l1_weight), bptt_clip=0.0)
    state = steps.init(jax.random.key(0), hp, {})
    state, metrics = jax.jit(steps.train_chunk, static_argnums=1)(state, 2)
    assert np.isfinite(metrics['loss']).all(), method
    assert int(state.step) == 2
  # a whole NADE run, through evaluation on every split (tests/test_music_train.py
  # runs the Bernoulli output the same way)
  result = train.train_and_evaluate(music_bengio.get_config('method=nade-crm,smoke'),
                                    str(tmp_path / 'run'), data=toy_corpus)
  member = result['members'][0]
  assert np.isfinite(member['test_loss']) and 0.0 <= member['test_error'] <= 1.0


def test_sweep_check_accepts_every_method(toy_corpus):
  for method in music_bengio.METHODS:
    config = music_bengio.get_config(f'method={method},smoke')
    sweep.check(config, toy_corpus)
    full = music_bengio.get_config(f'method={method},trials=16')
    units = sweep.plan(full, 1)
    # 16 trials in all, each in the group of the sizes it drew
    assert sum(len(u.rows) for u in units) == 16
    leaky = 'l' in method.split('-')[-1]
    for u in units:
      drawn = dict(u.structural)
      assert drawn['model.hidden_size'] in (100, 200, 300, 400)
      assert ('model.leaky_fraction' in drawn) == leaky
    keys = set(units[0].hparams)
    assert 'optim.learning_rate' in keys
    assert ('optim.momentum' in keys) == method.endswith('m')
    assert ('reg.l1_weight' in keys) == ('r' in method.split('-')[-1])
