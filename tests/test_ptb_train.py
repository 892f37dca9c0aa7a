"""Penn Treebank characters through the trainer (``tasks.text.TextTask``,
``experiments/ptb_char.py``): bits per character against closed forms; targets
``ahead`` symbols later; evaluation and training with the state carried across
windows against plain numpy loops over unbroken streams; the summed-cost
objective; the smoke config on a synthetic corpus (and on the real one when it
is there)."""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from training import train
from datasets import ptb
from experiments import ptb_char
from models.rnn import RecurrentNetwork
from tasks.text import TextTask


def toy_problem(streams, vocab, batch=3, chunk=10, ahead=1, eval_streams=1):
  return TextTask('toy', streams, vocab, batch, chunk, ahead, eval_streams)


# ---------------------------------------------------------------------------
# Plain numpy references.

def log_softmax(x):
  x = x - np.max(x, -1, keepdims=True)
  return x - np.log(np.sum(np.exp(x), -1, keepdims=True))


def numpy_rnn_nll(params, ids, ahead, start=0, stop=None, reset_every=None):
  """Summed NLL (nats) and count of predictions start..stop-1 of one unbroken
  stream: a sigmoid RNN without biases from h = 0, one symbol at a time."""
  p = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
  w_in, w_rec = p['layer_0']['w_in'], p['layer_0']['w_rec']
  stop = len(ids) - ahead if stop is None else stop
  h, total = np.zeros(w_rec.shape[0]), 0.0
  for t in range(start, stop):
    if reset_every and (t - start) % reset_every == 0:
      h = np.zeros_like(h)
    h = 1.0 / (1.0 + np.exp(-(w_in[ids[t]] + h @ w_rec)))
    total -= log_softmax(h @ p['w_out'] + p['b_out'])[ids[t + ahead]]
  return total, stop - start


def tiny_model(vocab, hidden=8, seed=0):
  """A sigmoid RNN whose weights are large enough that the carried state matters."""
  model = RecurrentNetwork(output_size=vocab, cell='rnn', activation='sigmoid', hidden_size=hidden,
                           use_bias=False, init_scheme='sigmoid')
  params = model.init(jax.random.key(seed), jnp.zeros((2, 1, vocab)))['params']
  keys = iter(jax.random.split(jax.random.key(seed + 1), 8))
  params = jax.tree.map(lambda a: 1.5 * jax.random.normal(next(keys), a.shape), params)
  return model, params


def eval_steps(model, problem):
  return train.Trainer(model=model, optimizer=None, task=problem, use_omega=False,
                     use_l1=False, use_bptt_clip=False)


# ---------------------------------------------------------------------------
# Bits per character, targets, carried state.

@pytest.mark.parametrize('ahead', [1, 5])
def test_bits_per_character_of_fixed_predictions_equal_closed_form(ahead):
  rng = np.random.default_rng(0)
  vocab = 50
  probs = rng.dirichlet(np.ones(vocab))
  streams = {s: rng.choice(vocab, n, p=probs).astype(np.int32)
             for s, n in (('train', 3000), ('valid', 1003), ('test', 517))}
  problem = toy_problem(streams, vocab, chunk=16, ahead=ahead, eval_streams=3)
  freq = np.bincount(streams['train'], minlength=vocab) + 1.0
  freq /= freq.sum()

  def apply_fn(logits, inputs, carry, reset):    # the same prediction at every step
    return jnp.broadcast_to(logits, inputs.shape[:2] + (vocab,)), carry, None

  evaluate = problem.evaluator(apply_fn, lambda params, b: jnp.zeros((b, 1)), None, None)
  members = jnp.asarray(np.stack([np.zeros(vocab), np.log(freq)]), jnp.float32)
  zero, unigram = evaluate(members, 'valid')
  targets = streams['valid'][ahead:]
  assert zero['count'] == unigram['count'] == len(targets)
  np.testing.assert_allclose(zero['bpc'], math.log2(vocab), rtol=1e-6)
  np.testing.assert_allclose(unigram['bpc'], -np.mean(np.log2(freq[targets])), rtol=1e-6)
  np.testing.assert_allclose(unigram['loss'], unigram['bpc'] * math.log(2), rtol=1e-12)
  np.testing.assert_allclose(zero['error'], np.mean(targets != 0), atol=1e-6)  # argmax: id 0
  np.testing.assert_allclose(unigram['error'], np.mean(targets != np.argmax(freq)), atol=1e-6)


@pytest.mark.parametrize('ahead', [1, 5])
def test_targets_are_the_symbols_ahead(ahead):
  rng = np.random.default_rng(1)
  ids = rng.integers(0, 7, 1000).astype(np.int32)
  batch_size, chunk = 3, 10
  problem = toy_problem({'train': ids, 'valid': ids[:101], 'test': ids[:50]}, 7, batch_size,
                        chunk, ahead)
  length = len(ids) // batch_size
  assert problem.steps_per_epoch == (length - ahead) // chunk
  batch_fn = jax.jit(problem.train_batch)
  for step in (0, 1, problem.steps_per_epoch - 1, problem.steps_per_epoch,
               problem.steps_per_epoch + 2):
    n = step % problem.steps_per_epoch
    batch = batch_fn(None, jnp.int32(step))
    pos = np.arange(batch_size)[None, :] * length + n * chunk + np.arange(chunk)[:, None]
    np.testing.assert_array_equal(np.argmax(batch['inputs'], -1), ids[pos])   # [T, B]
    np.testing.assert_array_equal(batch['targets'], ids[pos + ahead])
    assert bool(batch['reset']) == (n == 0)      # reset only at the start of an epoch
  # Evaluation: every symbol of the split once, its target `ahead` later.
  x, y, m = (np.asarray(a).transpose(2, 0, 1).reshape(-1) for a in problem.eval_data('valid'))
  np.testing.assert_array_equal(x[m > 0], ids[:101 - ahead])
  np.testing.assert_array_equal(y[m > 0], ids[ahead:101])


@pytest.mark.parametrize('num_streams', [1, 3])
def test_evaluation_carries_state_across_windows(num_streams):
  rng = np.random.default_rng(2)
  vocab, chunk, ahead = 7, 10, 2
  valid = rng.integers(0, vocab, 157).astype(np.int32)
  streams = {'train': rng.integers(0, vocab, 200).astype(np.int32), 'valid': valid,
             'test': valid[:30]}
  problem = toy_problem(streams, vocab, chunk=chunk, ahead=ahead, eval_streams=num_streams)
  model, params = tiny_model(vocab)
  steps = eval_steps(model, problem)
  evaluate = problem.evaluator(steps.apply, steps.initial_carry, None, None)
  got = evaluate(jax.tree.map(lambda a: a[None], params), 'valid')[0]

  count = len(valid) - ahead
  piece = math.ceil(math.ceil(count / num_streams) / chunk) * chunk   # symbols per stream
  total = sum(numpy_rnn_nll(params, valid, ahead, start, min(start + piece, count))[0]
              for start in range(0, count, piece))
  assert got['count'] == count
  np.testing.assert_allclose(got['loss'], total / count, rtol=1e-5)
  # The check can tell: resetting the state at every window gives another number.
  reset = numpy_rnn_nll(params, valid, ahead, reset_every=chunk)[0] / count
  assert abs(reset - got['loss']) > 1e-3


def test_training_carries_state_across_windows(tmp_path, monkeypatch):
  monkeypatch.setattr(ptb, 'MD5', {})     # a synthetic corpus: no known checksums
  corpus = write_corpus(tmp_path, np.random.default_rng(3))
  config = smoke_config(tmp_path, 'ahead=5,method=sgd-c,batch=3')
  with config.unlocked():
    config.optim.learning_rate = 0.0     # the parameters stay: losses are comparable
    config.model.hidden_size = 8
    config.task.chunk = 7
  steps = train.build(config)
  _, params = tiny_model(steps.task.vocab_size)
  state = steps.init(jax.random.key(0), dict(omega_alpha=0.0, l1_weight=0.0, bptt_clip=0.0), {})
  state = state.replace(params=params)
  num = 4
  _, metrics = jax.jit(steps.train_chunk, static_argnums=1)(state, num)

  ids = steps.task.streams['train']
  length = len(ids) // 3
  for n in range(num):                  # window n: steps n*7 .. n*7+6 of each unbroken stream
    want = np.mean([numpy_rnn_nll(params, ids[b * length:(b + 1) * length], 5, 0,
                                  (n + 1) * 7)[0] - numpy_rnn_nll(
                                      params, ids[b * length:(b + 1) * length], 5, 0, n * 7)[0]
                    for b in range(3)]) / 7
    np.testing.assert_allclose(metrics['loss'][n], want, rtol=1e-4)
  assert corpus['train'] == ''.join(steps.task.vocab[i] for i in ids)


def test_summed_cost_is_the_mean_times_the_window():
  rng = np.random.default_rng(4)
  vocab, chunk = 7, 10
  streams = {s: rng.integers(0, vocab, 300).astype(np.int32) for s in ('train', 'valid', 'test')}
  problem = toy_problem(streams, vocab, chunk=chunk)
  model, params = tiny_model(vocab)
  batch = problem.train_batch(None, 0)
  grads = {}
  for reduction in train.LOSS_REDUCTIONS:
    steps = train.Trainer(model=model, optimizer=None, task=problem, use_omega=False,
                        use_l1=False, use_bptt_clip=False, loss_reduction=reduction)
    (total, (loss, *_)), grads[reduction] = jax.value_and_grad(steps.loss_fn, has_aux=True)(
        params, None, batch, {}, jax.random.key(0))
    np.testing.assert_allclose(total, loss * (chunk if reduction == 'sum_over_time' else 1),
                               rtol=1e-6)
  jax.tree.map(lambda s, m: np.testing.assert_allclose(s, chunk * m, rtol=1e-5, atol=1e-6),
               grads['sum_over_time'], grads['mean'])


# ---------------------------------------------------------------------------
# The config, end to end.

def write_corpus(root, rng) -> dict:
  """ptb/ptb.char.{train,valid,test}.txt of random words, in the distribution's format."""
  letters = np.array(list('abcdefgh'))
  texts = {}
  for split, lines in (('train', 120), ('valid', 20), ('test', 15)):
    text = ''.join(' ' + ' '.join(''.join(rng.choice(letters, rng.integers(1, 6)))
                                  for _ in range(rng.integers(2, 9))) + ' \n'
                   for _ in range(lines))
    chars = ptb.words_to_chars(text)
    (root / 'ptb').mkdir(exist_ok=True)
    (root / 'ptb' / ptb.file_name('char', split)).write_text(chars)
    texts[split] = chars[0::2]
  return texts


def smoke_config(data_dir, arg):
  config = ptb_char.get_config(arg + ',smoke')
  with config.unlocked():
    config.data_dir = str(data_dir)
    config.task.eval_streams = 4
  return config


def test_configs_match_the_paper():
  for ahead, (lrs, alpha, schedule) in ptb_char.SETTINGS.items():
    for method in ('sgd', 'sgd-c', 'sgd-cr'):
      c = ptb_char.get_config(f'ahead={ahead},method={method}')
      assert (c.model.hidden_size, c.model.activation, c.model.use_bias) == (500, 'sigmoid', False)
      assert (c.task.chunk, c.train.loss_reduction) == (200, 'sum_over_time')
      assert c.optim.learning_rate == lrs[method]
      assert c.optim.clip_norm == (0.0 if method == 'sgd' else 45.0)
      assert c.reg.omega_alpha == (alpha if method == 'sgd-cr' else 0.0)
      assert c.reg.omega_schedule == schedule
  assert ptb_char.SETTINGS[1][0] == {'sgd': 0.001, 'sgd-c': 0.01, 'sgd-cr': 0.05}
  assert ptb_char.SETTINGS[5][1:] == (0.05, 'inverse_t')
  c = ptb_char.get_config('ahead=1,method=all')
  assert c.population.rows == ((1e30, 0.0, 0.001), (45.0, 0.0, 0.01), (45.0, 0.01, 0.05))
  with pytest.raises(ValueError, match='ahead'):
    ptb_char.get_config('ahead=2')


@pytest.mark.slow
@pytest.mark.parametrize('arg', ['ahead=5,batch=4', 'ahead=1,method=all,batch=4'])
def test_smoke_config_trains_on_a_synthetic_corpus(tmp_path, arg, monkeypatch):
  monkeypatch.setattr(ptb, 'MD5', {})     # a synthetic corpus: no known checksums
  corpus = write_corpus(tmp_path, np.random.default_rng(5))
  config = smoke_config(tmp_path, arg)
  with config.unlocked():
    config.train.num_steps = 12
    config.train.log_every = 4
    config.train.eval_every = 12
  train.check_config(config)
  result = train.train_and_evaluate(config, str(tmp_path / 'run'))
  ahead = config.task.kwargs.ahead
  for member in result['members']:
    assert member['test_count'] == len(corpus['test']) - ahead
    assert 0 < member['test_bpc'] < 2 * math.log2(10)   # 10 symbols
    np.testing.assert_allclose(member['test_bpc'], member['test_loss'] / math.log(2))
  with open(tmp_path / 'run' / 'metrics.jsonl') as f:
    valid = [r for r in map(json.loads, f) if r['split'] == 'valid']
  assert valid and all(r['count'] == len(corpus['valid']) - ahead and 'bpc' in r for r in valid)


@pytest.mark.slow
@pytest.mark.realdata
def test_ptb_smoke_on_the_real_corpus(tmp_path, real_data):
  data = real_data(*(f'ptb/{ptb.file_name("char", s)}' for s in ptb.SPLITS))
  test_file = data / 'ptb' / 'ptb.char.test.txt'
  result = train.train_and_evaluate(ptb_char.get_config('smoke'), str(tmp_path))
  member = result['members'][0]
  assert member['test_count'] == len(test_file.read_text()) // 2 - 1
  assert 0 < member['test_bpc'] < math.log2(50)
