"""Music through the trainer: evaluation over whole pieces with the state
carried across chunks equals a direct per-piece computation; training with
carried state runs; the real-data smoke config runs when the corpora exist."""

import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

import problems
import train
from datasets import _files
from experiments import music
from models.rnn import RecurrentNetwork


def random_rolls(rng, lengths):
  return [(rng.random((n, 88)) < 0.05).astype(np.uint8) for n in lengths]


def direct_nll(model, params, pieces):
  """Mean over all predicted frames of -log p(frame t+1 | frames <= t), one
  whole piece at a time: no chunks, no batches, no carried state."""
  total, frames = 0.0, 0
  for piece in pieces:
    x = jnp.asarray(piece[:-1, None, :], jnp.float32)
    logits, _ = model.apply({'params': params}, x)
    y = piece[1:, None, :].astype(np.float64)
    l = np.asarray(logits, np.float64)
    total += np.sum(np.logaddexp(0, l) - y * l)        # softplus(l) - y l, summed over keys
    frames += len(piece) - 1
  return total / frames


def test_whole_piece_evaluation_equals_direct_computation():
  rng = np.random.default_rng(0)
  rolls = {'train': random_rolls(rng, [30, 45]), 'valid': random_rolls(rng, [7, 33, 50, 12, 26]),
           'test': random_rolls(rng, [20])}
  problem = problems.MusicProblem('toy', rolls, batch_size=2, chunk=8)   # many chunks per piece
  model = RecurrentNetwork(output_size=88, cell='gru', hidden_size=16, learned_initial_state=True)
  params = model.init(jax.random.key(0), jnp.zeros((8, 2, 88)))['params']
  params['initial_0'] = 0.3 * jnp.ones_like(params['initial_0'])        # resets must use it
  steps = train.Steps(model=model, optimizer=None, problem=problem, use_omega=False,
                      use_l1=False, use_bptt_clip=False)
  evaluate = problem.evaluator(steps.apply, steps.initial_carry, None, None)
  stacked = jax.tree.map(lambda x: x[None], params)
  got = evaluate(stacked, 'valid')[0]
  assert got['count'] == sum(len(p) - 1 for p in rolls['valid'])
  np.testing.assert_allclose(got['loss'], direct_nll(model, params, rolls['valid']), rtol=1e-5)


def toy_music_config():
  config = music.get_config('smoke')
  with config.unlocked():
    config.train.num_steps = 12
  return config


def test_training_carries_state_across_chunks(monkeypatch, tmp_path):
  rng = np.random.default_rng(1)
  rolls = {s: random_rolls(rng, [25, 40, 18]) for s in ('train', 'valid', 'test')}
  monkeypatch.setattr(problems.MusicProblem, 'load',
                      classmethod(lambda cls, name, b, c, d=None: cls(name, rolls, b, c)))
  config = toy_music_config()
  with config.unlocked():
    config.task.chunk = 10
  steps = train.build(config)
  state = steps.init(jax.random.key(0), dict(omega_alpha=0.5, l1_weight=0.0, bptt_clip=0.0), {})
  chunk = jax.jit(steps.train_chunk, static_argnums=1)
  state, metrics = chunk(state, 4)
  assert np.isfinite(metrics['loss']).all()
  # After chunk n the carried state is that chunk's final state, not zeros.
  assert float(jnp.abs(state.carry[0]).sum()) > 0
  result = train.train_and_evaluate(config, str(tmp_path))
  assert np.isfinite(result['members'][0]['test_loss'])


def test_music_smoke_on_the_real_corpus(tmp_path):
  data = _files.resolve_data_dir(None)
  if not (data / 'music' / 'JSB Chorales.pickle').exists():
    pytest.skip(f'the music corpora are not in {data} (set RNNOPT_DATA, or run '
                'python -m datasets.download music)')
  result = train.train_and_evaluate(music.get_config('smoke'), str(tmp_path))
  member = result['members'][0]
  assert member['test_count'] == 4725 - 77     # JSB test frames minus each piece's first
  assert 0 < member['test_loss'] < 88 * np.log(2)
