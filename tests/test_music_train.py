"""Music through the trainer: evaluation over whole pieces with the state
carried across chunks (NLL and expected frame accuracy) equals a direct
per-piece computation; training with
carried state runs; the real-data smoke config runs when the corpora exist."""


import jax
import jax.numpy as jnp
import numpy as np
import pytest

from training import selection
from training import train
from experiments import music
from models.rnn import RecurrentNetwork
from tasks.music import MusicTask


def random_rolls(rng, lengths):
  return [(rng.random((n, 88)) < 0.05).astype(np.uint8) for n in lengths]


def direct_nll(model, params, pieces, per_piece=False):
  """Mean over all predicted frames of -log p(frame t+1 | frames <= t), one
  whole piece at a time: no chunks, no batches, no carried state.
  ``per_piece``: the mean over pieces of each piece's mean instead."""
  totals, frames = [], []
  for piece in pieces:
    if len(piece) < 2:          # nothing to predict
      continue
    x = jnp.asarray(piece[:-1, None, :], jnp.float32)
    logits, _ = model.apply({'params': params}, x)
    y = piece[1:, None, :].astype(np.float64)
    l = np.asarray(logits, np.float64)
    totals.append(np.sum(np.logaddexp(0, l) - y * l))  # softplus(l) - y l, summed over keys
    frames.append(len(piece) - 1)
  if per_piece:
    return np.mean([t / f for t, f in zip(totals, frames)])
  return sum(totals) / sum(frames)


def test_whole_piece_evaluation_equals_direct_computation():
  rng = np.random.default_rng(0)
  rolls = {'train': random_rolls(rng, [30, 45]), 'valid': random_rolls(rng, [7, 33, 50, 12, 26]),
           'test': random_rolls(rng, [20, 1, 41])}     # a 1-frame piece scores nothing
  problem = MusicTask('toy', rolls, batch_size=2, chunk=8)   # many chunks per piece
  model = RecurrentNetwork(output_size=88, cell='gru', hidden_size=16, learned_initial_state=True)
  params = model.init(jax.random.key(0), jnp.zeros((8, 2, 88)))['params']
  params['initial_0'] = 0.3 * jnp.ones_like(params['initial_0'])        # resets must use it
  steps = train.Trainer(model=model, optimizer=None, task=problem, use_omega=False,
                      use_l1=False, use_bptt_clip=False)
  evaluate = problem.evaluator(steps.apply, steps.initial_carry, None, None)
  stacked = jax.tree.map(lambda x: x[None], params)
  got = evaluate(stacked, 'valid')[0]
  assert got['count'] == sum(len(p) - 1 for p in rolls['valid'])
  np.testing.assert_allclose(got['loss'], direct_nll(model, params, rolls['valid']), rtol=1e-5)
  np.testing.assert_allclose(1.0 - got['error'],
                             direct_expected_accuracy(model, params, rolls['valid']), rtol=1e-4)
  # the mean over pieces of each piece's NLL per frame: pieces of 7 to 50
  # frames weigh alike, so it differs from the pooled mean
  for split in ('valid', 'test'):
    got = evaluate(stacked, split)[0]
    want = direct_nll(model, params, rolls[split], per_piece=True)
    np.testing.assert_allclose(got['loss_per_sequence'], want, rtol=1e-5)
    assert abs(want - direct_nll(model, params, rolls[split])) > 1e-4


def direct_expected_accuracy(model, params, pieces):
  """Mean over predicted frames of E[TP / (TP + FP + FN)] with every key drawn
  independently from its sigmoid: the law of FP by numpy convolutions, one
  whole piece at a time (an empty target frame scores 1 when nothing is drawn)."""
  total, frames = 0.0, 0
  for piece in pieces:
    logits, _ = model.apply({'params': params}, jnp.asarray(piece[:-1, None, :], jnp.float32))
    probs = 1.0 / (1.0 + np.exp(-np.asarray(logits, np.float64)[:, 0]))
    for p, y in zip(probs, piece[1:].astype(np.float64)):
      k = y.sum()
      law = np.array([1.0])
      for q in p * (1 - y):                     # FP: a Poisson-binomial count
        law = np.convolve(law, [1 - q, q])
      if k > 0:
        total += (y @ p) * np.sum(law / (k + np.arange(len(law))))
      else:
        total += law[0]
      frames += 1
  return total / frames


def toy_corpus(seed: int, lengths: list[int]) -> dict:
  """Random piano-rolls of these lengths (each split), in ``tasks.music.load``'s
  form: the ``data`` a run is given in place of a real corpus."""
  rng = np.random.default_rng(seed)
  return {s: random_rolls(rng, lengths) for s in ('train', 'valid', 'test')}


def toy_music_config():
  config = music.get_config('smoke')
  with config.unlocked():
    config.train.num_steps = 12
  return config


def test_training_carries_state_across_chunks():
  """The state carried out of each training chunk against a numpy loop of the
  sigmoid RNN, ``h_t = sigmoid(x_t W_in + h_{t-1} W_rec + b)``, over the
  piece's frames with the parameters each chunk was trained with: from zeros
  at a piece's first chunk, else from the previous chunk's final state.
  (Whole music runs through train_and_evaluate: the patience and halving tests.)"""
  rolls = toy_corpus(1, [25, 40, 18])
  config = toy_music_config()
  with config.unlocked():
    config.task.chunk = 4
    config.task.shuffle = False      # the pieces by length: 18 frames (chunks 0-4), 25 (5-11)
  steps = train.build(config, data=rolls)
  state = steps.init(jax.random.key(0), dict(omega_alpha=0.5, l1_weight=0.0, bptt_clip=0.0), {})
  # Weights N(0, 0.5) instead of the sigmoid scheme's N(0, 0.01), so that the state matters.
  state = state.replace(params=jax.tree.map(lambda p: 50.0 * p, state.params))
  w_rec0 = np.asarray(state.params['layer_0']['w_rec'])
  chunk = jax.jit(steps.train_chunk, static_argnums=1)
  schedule = [(i, first) for i in (2, 0) for first in range(0, len(rolls['train'][i]), 4)]
  h = None
  for piece, first in schedule[:8]:
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), state.params)['layer_0']
    state, metrics = chunk(state, 1)
    assert np.isfinite(metrics['loss']).all()
    frames = rolls['train'][piece][first:first + 4].astype(np.float64)
    if len(frames) < 4:                # the piece's last chunk ends in padding
      continue
    h = np.zeros(config.model.hidden_size) if first == 0 else h
    for x in frames:
      h = 1.0 / (1.0 + np.exp(-(x @ p['w_in'] + h @ p['w_rec'] + p['b'])))
    np.testing.assert_allclose(np.asarray(state.carry[0])[0], h, rtol=1e-5, atol=1e-6)
  # the parameters moved from chunk to chunk: each chunk's own were needed
  assert not np.allclose(np.asarray(state.params['layer_0']['w_rec']), w_rec0, atol=1e-3)


@pytest.mark.slow
@pytest.mark.realdata
def test_music_smoke_on_the_real_corpus(tmp_path, real_data):
  real_data('music/JSB Chorales.pickle')
  result = train.train_and_evaluate(music.get_config('smoke'), str(tmp_path))
  member = result['members'][0]
  assert member['test_count'] == 4725 - 77     # JSB test frames minus each piece's first
  assert 0 < member['test_loss'] < 88 * np.log(2)


def replay_halving(losses, weights, epochs, lr):
  """The rule in plain Python: the rate each step's update used."""
  used, total, weight, previous, epoch = [], 0.0, 0.0, None, epochs[0]
  for loss, w, e in zip(losses, weights, epochs):
    if e != epoch:
      if weight > 0:
        mean = total / weight
        if previous is not None and not mean < previous:
          lr /= 2
        previous = mean
      total, weight, epoch = 0.0, 0.0, e
    total, weight = total + loss * w, weight + w
    used.append(lr)
  return used


def run_halving(losses, weights, epochs, lr):
  import optax
  import optim
  opt = optax.chain(optax.sgd(lr), optim.halve_on_rise())
  params = {'w': np.zeros(1, np.float32)}
  state, used = opt.init(params), []
  update = jax.jit(opt.update)
  for loss, w, e in zip(losses, weights, epochs):
    updates, state = update({'w': np.ones(1, np.float32)}, state, params,
                            loss=loss, weight=w, epoch=e)
    used.append(-float(updates['w'][0]))
  return used


def test_learning_rate_halves_after_an_epoch_whose_loss_rose():
  """optim.halve_on_rise against a plain-Python replay of the paper's rule:
  epoch means 3, 2 (fell), 4 (rose), 4 (did not fall), 1 (fell)."""
  losses = [3, 3, 2, 2, 4, 4, 4, 4, 1, 1, 1]
  epochs = [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5]
  weights = [1.0] * len(losses)
  used = run_halving(losses, weights, epochs, lr=1.0)
  assert used == pytest.approx(replay_halving(losses, weights, epochs, 1.0))
  assert used[-1] == 0.25                   # halved twice, then kept


def test_a_member_that_stopped_learning_keeps_its_learning_rate():
  """The epoch error is a mean per scored frame of the steps a member learned
  on: weight 0 (stopped, or nothing scored) leaves a step out, so an epoch
  with nothing learned keeps the rate and the previous error, and a rise
  among the steps it did learn on still halves it."""
  # epoch 0: (2*1 + 4*3) / 4 = 3.5; epoch 1: 3 (fell); epoch 2: nothing; epoch 3: 9 on
  # a weight-0 step and 3.5 (rose against 3); epoch 4: the judgement shows
  losses = [2, 4, 3, 3, 5, 5, 9, 3.5, 1]
  weights = [1, 3, 1, 1, 0, 0, 0, 1, 1]
  epochs = [0, 0, 1, 1, 2, 2, 3, 3, 4]
  used = run_halving(losses, weights, epochs, lr=1.0)
  assert used == pytest.approx(replay_halving(losses, weights, epochs, 1.0))
  assert used[:8] == [1.0] * 8 and used[8] == 0.5


@pytest.mark.slow
def test_new_learning_rates_reach_every_member_of_a_population():
  import optim
  from training import population
  from experiments import temporal_order
  config = temporal_order.get_config('smoke')
  with config.unlocked():
    config.population.seeds = (0, 1, 2)
  steps = train.build(config)
  pop = population.make_population(config)
  state = train.init_population(steps, pop, population.make_mesh(3, 20))
  state = state.replace(opt_state=optim.set_hyperparams(
      state.opt_state, learning_rate=np.array([0.1, 0.2, 0.3], np.float32)))
  state, _ = jax.jit(jax.vmap(steps.train_chunk, in_axes=(0, None)), static_argnums=1)(state, 1)
  np.testing.assert_allclose(optim.inspect(state.opt_state)['learning_rate'], [0.1, 0.2, 0.3])


def test_companion_rows_swap_the_cell_and_keep_the_techniques():
  rnn = music.get_config('dataset=nottingham,method=sgd-cr')
  lstm = music.get_config('dataset=nottingham,method=sgd-cr,cell=lstm')
  assert (rnn.model.cell, rnn.model.activation) == ('rnn', 'sigmoid')
  assert (lstm.model.cell, lstm.model.activation, lstm.model.init_scheme) == (
      'lstm', 'tanh', 'default')
  for field in ('optim', 'reg', 'task'):     # same clipping, Omega, data and schedule
    assert lstm[field].to_dict() == rnn[field].to_dict()
  assert lstm.model.hidden_size == rnn.model.hidden_size
  with pytest.raises(ValueError, match="cell='foo' is not one of rnn, gru, lstm"):
    music.get_config('cell=foo')


def test_a_grid_argument_makes_one_methods_rates_or_thresholds_members():
  """``lrs=`` / ``clips=``: the config the ``--config.population.*`` flags make
  from the plain one (the records of pascanu2013.table1_tuned ran so)."""
  plain = music.get_config('dataset=piano,method=sgd-c,seed=1')
  plain.population.hparams, plain.population.rows = ('optim.clip_norm',), ((0.5,), (1.0,), (2.0,))
  assert music.get_config('dataset=piano,method=sgd-c,seed=1,clips=0.5/1/2').to_dict() == (
      plain.to_dict())
  rates = music.get_config('dataset=musedata,method=sgd,lrs=0.25/0.5')
  assert (rates.population.hparams, rates.population.rows) == (
      ('optim.learning_rate',), ((0.25,), (0.5,)))
  assert tuple(rates.paper.methods) == ('sgd',) and rates.optim.clip_norm == 0.0
  for arg, message in (('method=all,lrs=0.5/1', 'a grid of one method'),
                       ('method=sgd,clips=1/2', 'needs a clipped method'),
                       ('method=sgd-c,lrs=0.5,clips=1', 'not both'),
                       ('method=sgd-c,clips=1;2', 'numbers separated by "/"'),
                       ('method=sgd-c,clips=1/1', 'positive and distinct')):
    with pytest.raises(ValueError, match=message) as e:
      music.get_config(arg)
    assert '\n' not in str(e.value)


@pytest.mark.slow
def test_chunk_schedule_grows_the_music_chunk_with_state_reset_at_each_phase(monkeypatch, tmp_path):
  """A truncation length that grows during training (``train.chunk_schedule``)
  on piano-rolls: each phase reads the pieces in its own chunk length from the
  first chunk of an epoch, one trace per phase."""
  from experiments import music_bengio
  rolls = toy_corpus(2, [25, 40, 18, 33])
  traced, batch_fn = [], MusicTask.train_batch

  def recording_batch(self, key, step):
    traced.append(tuple(self.splits['train'][0].shape[:2]))   # (chunks, chunk length)
    return batch_fn(self, key, step)

  monkeypatch.setattr(MusicTask, 'train_batch', recording_batch)
  config = music_bengio.get_config('method=c,smoke,batch=4')
  with config.unlocked():
    config.train.num_steps = 12
    config.train.chunk_schedule = ((0, 5), (9, 20))
    config.train.halve_lr_on_rise = True   # in the optimiser state: composes with the schedule
  result = train.train_and_evaluate(config, str(tmp_path), data=rolls)
  import json
  rates = [json.loads(l)['learning_rate'] for l in (tmp_path / 'metrics.jsonl').read_text().splitlines()
           if json.loads(l)['split'] == 'train']
  assert rates and all(0 < r <= config.optim.learning_rate for r in rates)
  # one batch of the 4 pieces, padded to a multiple of the chunk of the longest (40 frames)
  assert traced[1:] == [(8, 5), (2, 20)]          # after init: one trace per phase
  assert np.isfinite(result['members'][0]['test_loss'])
  # The second phase starts at its first chunk (step 9, though 9 % 2 chunks
  # is 1): an update there starts from the initial state, whatever is carried.
  steps = train.build(config, data=rolls)
  phase = train.phase_trainer(config, steps, 9, 20)
  state = steps.init(jax.random.key(0), dict(l1_weight=0.0, bptt_clip=0.0), {})
  state = state.replace(step=jnp.asarray(9, state.step.dtype))
  update = jax.jit(phase.train_chunk, static_argnums=1)

  def params_after_one_update(step, carried):
    s = state.replace(step=state.step + step - 9,
                      carry=jax.tree.map(lambda x: x + carried, state.carry))
    return jax.tree.leaves(update(s, 1)[0].params)

  for a, b in zip(params_after_one_update(9, 0.0), params_after_one_update(9, 0.7)):
    np.testing.assert_array_equal(a, b)
  # ... while one step later the carried state does change the update
  assert any(not np.array_equal(a, b) for a, b in zip(params_after_one_update(10, 0.0),
                                                      params_after_one_update(10, 0.7)))


@pytest.mark.slow
def test_with_a_chunk_schedule_validation_ends_each_phases_epochs(tmp_path):
  """eval_every=0 validates at the end of every epoch, and a phase's window
  sets its epoch: 4 pieces of at most 40 frames in one batch of 4 are 8
  chunks of 5 (epochs end at steps 8 and, with the phase, 9) and then 2
  chunks of 20 (steps 11 and, the budget's end, 12)."""
  import json
  from experiments import music_bengio
  rolls = toy_corpus(2, [25, 40, 18, 33])
  config = music_bengio.get_config('method=c,smoke,batch=4')
  with config.unlocked():
    config.train.num_steps = 12
    config.train.log_every = 1
    config.train.eval_every = 0
    config.train.chunk_schedule = ((0, 5), (9, 20))
  train.train_and_evaluate(config, str(tmp_path), data=rolls)
  lines = [json.loads(l) for l in (tmp_path / 'metrics.jsonl').read_text().splitlines()]
  assert sorted({l['step'] for l in lines if l['split'] == 'valid'}) == [8, 9, 11, 12]


def epoch_orders(problem, key, epochs):
  """The chunk each step of ``epochs`` epochs reads, one list per epoch."""
  n = problem.steps_per_epoch
  chunks = jax.jit(jax.vmap(problem.train_chunk, in_axes=(None, 0)))(key, jnp.arange(epochs * n))
  return np.asarray(chunks).reshape(epochs, n).tolist()


def test_training_visits_every_piece_once_an_epoch_in_a_new_order_per_epoch_and_seed():
  """One piece per update (the papers' setting): an epoch reads every chunk
  once, each piece's chunks in order right after its first, and the order of
  the pieces is new in every epoch and for every seed."""
  rng = np.random.default_rng(3)
  lengths = [9, 3, 17, 5, 12, 4, 8, 21]
  rolls = {s: random_rolls(rng, lengths) for s in ('train', 'valid', 'test')}
  problem = MusicTask('toy', rolls, batch_size=1, chunk=4)
  reset = np.asarray(problem.splits['train'][3])
  first_chunks = np.flatnonzero(reset).tolist()     # where each piece starts
  assert len(first_chunks) == len(lengths)
  orders = epoch_orders(problem, jax.random.key(0), 3)
  for order in orders:
    assert sorted(order) == list(range(problem.steps_per_epoch))
    for prev, cur in zip(order[:-1], order[1:]):    # a piece starts, or goes on
      assert cur in first_chunks or cur == prev + 1
    assert order[0] in first_chunks
  pieces = lambda order: [c for c in order if c in first_chunks]
  assert pieces(orders[0]) != pieces(orders[1]) != pieces(orders[2])
  assert pieces(epoch_orders(problem, jax.random.key(1), 1)[0]) != pieces(orders[0])
  # the same key, the same order: a resumed run reads what the uninterrupted one would
  assert epoch_orders(problem, jax.random.key(0), 3) == orders
  fixed = MusicTask('toy', rolls, batch_size=1, chunk=4, shuffle=False)
  assert epoch_orders(fixed, jax.random.key(0), 2) == [list(range(fixed.steps_per_epoch))] * 2


def test_shuffled_chunks_visit_every_chunk_once_an_epoch_each_from_the_initial_state():
  """``shuffle_chunks``: an epoch reads every chunk of every piece once, in an
  order new each epoch and seed that breaks the pieces apart, and each update
  starts from the initial state; without ``shuffle`` it is refused."""
  rng = np.random.default_rng(3)
  lengths = [9, 3, 17, 5, 12, 4, 8, 21]
  rolls = {s: random_rolls(rng, lengths) for s in ('train', 'valid', 'test')}
  problem = MusicTask('toy', rolls, batch_size=1, chunk=4, shuffle_chunks=True)
  n = problem.steps_per_epoch
  orders = epoch_orders(problem, jax.random.key(0), 3)
  for order in orders:
    assert sorted(order) == list(range(n))
  assert orders[0] != orders[1] != orders[2]
  assert epoch_orders(problem, jax.random.key(1), 1)[0] != orders[0]
  assert epoch_orders(problem, jax.random.key(0), 3) == orders       # resumable
  # Pieces are broken apart: some update is not followed by its piece's next chunk.
  follows = [cur == prev + 1 for order in orders for prev, cur in zip(order[:-1], order[1:])]
  assert sum(follows) < len(follows) // 2
  for step in (0, n - 1, n + 2):
    batch = problem.train_batch(jax.random.key(0), step)
    assert np.all(np.asarray(batch['reset']))
    k = orders[step // n][step % n]
    np.testing.assert_array_equal(np.asarray(batch['inputs']),
                                  np.asarray(problem.splits['train'][0][k], np.float32))
  with pytest.raises(ValueError, match='shuffle_chunks'):
    MusicTask('toy', rolls, batch_size=1, chunk=4, shuffle=False, shuffle_chunks=True)


def test_a_chunk_with_nothing_to_score_changes_nothing_and_never_stops_a_run():
  """A piece of 9 frames in chunks of 4: its third chunk holds the last frame
  alone, which predicts nothing (no target). That update has loss 0 (not
  0/0), leaves the parameters and the optimiser as they were, and the run
  goes on learning."""
  import optim
  rng = np.random.default_rng(4)
  rolls = {s: random_rolls(rng, [9]) for s in ('train', 'valid', 'test')}
  problem = MusicTask('toy', rolls, batch_size=1, chunk=4)
  mask = np.asarray(problem.splits['train'][2])
  assert mask.sum(axis=(1, 2)).tolist() == [4, 4, 0]
  config = music.get_config('smoke')
  model = RecurrentNetwork(output_size=88, cell='rnn', activation='sigmoid', hidden_size=8)
  steps = train.Trainer(model=model, optimizer=optim.make_optimizer(config.optim, 10),
                      task=problem, use_omega=True, use_l1=False, use_bptt_clip=False)
  state = steps.init(jax.random.key(0), dict(omega_alpha=0.5, l1_weight=0.0, bptt_clip=0.0), {})
  chunk = jax.jit(steps.train_chunk, static_argnums=1)
  state, m = chunk(state, 2)
  before = jax.tree.leaves((state.params, state.opt_state))
  state, m3 = chunk(state, 1)
  assert float(m3['loss'][0]) == 0.0 and float(m3['scored'][0]) == 0.0
  assert bool(state.active)
  for a, b in zip(before, jax.tree.leaves((state.params, state.opt_state))):
    np.testing.assert_array_equal(a, b)
  state, m = chunk(state, 3)                        # the next epoch learns again
  assert np.all(np.isfinite(m['loss'])) and bool(state.active)
  assert any(not np.array_equal(a, b) for a, b in zip(before, jax.tree.leaves(state.params)))
  # the logged loss is the mean over scored frames: the empty window counts for nothing
  assert train.scored_mean(np.array([2.0, 4.0, 0.0]), np.array([1.0, 3.0, 0.0])) == 3.5


def test_patience_stops_a_member_whose_validation_stops_improving(tmp_path):
  """Early stopping: with learning rate 0 the validation loss never falls
  below its first value, so with patience 2 the run ends after 3 epochs of
  its 10 (validation at the end of each), its best kept from the first."""
  rolls = toy_corpus(5, [12, 7, 9])
  config = music.get_config('smoke,method=sgd-c')
  with config.unlocked():
    config.task.chunk = 5
    config.task.epochs = 10
    config.optim.learning_rate = 0.0
    config.train.log_every = 7
    config.train.eval_every = 0
    config.train.patience = 2
  result = train.train_and_evaluate(config, str(tmp_path), data=rolls)
  per_epoch = 3 + 2 + 2                            # chunks of 5 of the three pieces, one a step
  assert result['step'] == 3 * per_epoch
  assert result['members'][0]['best_valid_step'] == per_epoch
  best = selection.BestOnValid({'w': jnp.zeros((2, 1))}, 2)
  for losses in ((3.0, 5.0), (2.0, 5.0), (2.5, 4.0), (2.6, 4.5)):
    best.update({'w': jnp.zeros((2, 1))}, [dict(loss=l) for l in losses], 0)
  assert best.since.tolist() == [2, 1]


def test_patience_min_delta_counts_only_falls_larger_than_it():
  """``train.patience_min_delta``: a validation loss creeping down by less
  than min_delta an epoch runs patience out (MuseData's SGD crept by 1e-5 an
  epoch for 80 epochs), while the best parameters still follow every fall."""
  best = selection.BestOnValid({'w': jnp.zeros((1, 1))}, 1, min_delta=0.1)
  since = []
  for step, loss in enumerate((3.0, 2.95, 2.92, 2.85, 2.80, 2.78)):
    best.update({'w': jnp.full((1, 1), float(step))}, [dict(loss=loss)], step)
    since.append(int(best.since[0]))
  # 3.0 is the first mark; 2.95 and 2.92 are within 0.1 of it; 2.85 is the
  # next mark (0.15 below); 2.80 and 2.78 are within 0.1 of 2.85.
  assert since == [0, 1, 2, 0, 1, 2]
  assert best.step == [5] and float(best.params['w'][0, 0]) == 5.0
  resumed = selection.BestOnValid(best.params, 1, best.meta, min_delta=0.1)
  resumed.update(best.params, [dict(loss=2.76)], 6)
  assert int(resumed.since[0]) == 3 and resumed.step == [6]
  resumed.update(best.params, [dict(loss=2.70)], 7)
  assert int(resumed.since[0]) == 0


def test_halving_on_validation_follows_the_validation_losses(tmp_path):
  """``train.halve_lr_on_valid``: the rate halves after each epoch whose
  validation loss did not fall below the last epoch's. Replayed here from the
  logged validation losses, in plain Python, against the logged rates."""
  import json
  rolls = toy_corpus(7, [12, 7, 9])
  config = music.get_config('smoke,method=all')
  with config.unlocked():
    config.task.chunk = 5
    config.task.epochs = 8
    config.optim.learning_rate = 4.0      # large enough that validation rises now and then
    config.train.log_every = 7            # one line an epoch (7 steps)
    config.train.eval_every = 0
    config.train.halve_lr_on_valid = True
  train.train_and_evaluate(config, str(tmp_path), data=rolls)
  rows = [json.loads(l) for l in (tmp_path / 'metrics.jsonl').read_text().splitlines()]
  members = sorted({r['member'] for r in rows})
  halvings = 0
  for i in members:
    valid = [r['loss'] for r in rows if r['split'] == 'valid' and r['member'] == i]
    rates = [r['learning_rate'] for r in rows if r['split'] == 'train' and r['member'] == i]
    lr = rates[0]
    for epoch in range(1, len(valid)):      # the rate logged with epoch e+1's training
      if not valid[epoch] < valid[epoch - 1]:
        lr, halvings = lr / 2, halvings + 1
      if epoch + 1 < len(rates):
        assert rates[epoch + 1] == pytest.approx(lr), (i, epoch)
  assert halvings > 0                      # the rule was exercised


def test_halving_on_a_training_pass_judges_the_training_set_scored_after_each_epoch(tmp_path):
  """``train.halve_lr_on_train_pass``: after each epoch the training set is
  scored with the epoch's final parameters (lines ``split='train_pass'``) and
  the rate halves when that loss did not fall. With the training pieces
  copied into the validation split, each pass must equal that epoch's
  validation score, and a second run with its own validation pieces (the
  same training: validation does not steer it) must give the same passes and
  a different validation; the rates are replayed from the pass losses in
  plain Python."""
  import json

  def run(rolls, workdir):
    config = music.get_config('smoke,method=all')
    with config.unlocked():
      config.task.chunk = 5
      config.task.epochs = 8
      config.optim.learning_rate = 4.0    # large enough that the loss rises now and then
      config.train.log_every = 7          # one line an epoch (7 steps)
      config.train.eval_every = 0
      config.train.halve_lr_on_train_pass = True
    train.train_and_evaluate(config, str(workdir), data=rolls)
    return [json.loads(l) for l in (workdir / 'metrics.jsonl').read_text().splitlines()]

  def lines(rows, split, i):
    return [(r['step'], r['loss']) for r in rows if r['split'] == split and r['member'] == i]

  rolls = toy_corpus(7, [12, 7, 9])
  rows_own = run(rolls, tmp_path / 'own_valid')
  rows = run(dict(rolls, valid=[r.copy() for r in rolls['train']]), tmp_path / 'train_as_valid')
  halvings = 0
  for i in sorted({r['member'] for r in rows}):
    passes, valid = lines(rows, 'train_pass', i), lines(rows, 'valid', i)
    assert len(passes) == len(valid) > 1
    assert np.allclose(passes, valid, rtol=1e-5), i
    assert np.allclose(passes, lines(rows_own, 'train_pass', i), rtol=1e-5), i
    assert not np.allclose(passes, lines(rows_own, 'valid', i), rtol=1e-3), i
    rates = [r['learning_rate'] for r in rows if r['split'] == 'train' and r['member'] == i]
    lr = rates[0]
    for epoch in range(1, len(passes)):   # the rate logged with epoch e+1's training
      if not passes[epoch][1] < passes[epoch - 1][1]:
        lr, halvings = lr / 2, halvings + 1
      if epoch + 1 < len(rates):
        assert rates[epoch + 1] == pytest.approx(lr), (i, epoch)
  assert halvings > 0                      # the rule was exercised


def test_halving_on_a_training_pass_needs_one_judge_and_music():
  rolls = toy_corpus(0, [12, 7])
  config = music.get_config('smoke')
  with config.unlocked():
    config.train.eval_every = 0
    config.train.halve_lr_on_valid = True
    config.train.halve_lr_on_train_pass = True
  with pytest.raises(ValueError, match='set at most one'):
    train.build(config, data=rolls)
  with config.unlocked():
    config.train.halve_lr_on_valid = False
    config.train.eval_every = 3
  with pytest.raises(ValueError, match='halve_lr_on_train_pass'):
    train.build(config, data=rolls)


def test_halving_on_validation_needs_validation_every_epoch():
  rolls = toy_corpus(0, [12, 7])
  config = music.get_config('smoke')
  with config.unlocked():
    config.train.halve_lr_on_valid = True
    config.train.eval_every = 3
  with pytest.raises(ValueError, match='halve_lr_on_valid'):
    train.build(config, data=rolls)


@pytest.mark.parametrize('reset_every_chunk', [False, True])
def test_reset_every_chunk_trains_each_chunk_from_the_initial_state(reset_every_chunk):
  """One 30-frame piece in chunks of 10, learning rate 0: each chunk's logged
  training loss is the NLL of its frames computed directly, from the initial
  state (every chunk a sequence of its own) or within the whole piece."""
  rolls = toy_corpus(2, [30])
  config = toy_music_config()
  with config.unlocked():
    config.task.chunk = 10
    config.task.reset_every_chunk = reset_every_chunk
    config.optim.learning_rate = 0.0
    config.reg.omega_alpha = 0.0
  steps = train.build(config, data=rolls)
  state = steps.init(jax.random.key(0), dict(omega_alpha=0.0, l1_weight=0.0, bptt_clip=0.0), {})
  # Weights N(0, 0.5) instead of the sigmoid scheme's N(0, 0.01), so that the state matters.
  state = state.replace(params=jax.tree.map(lambda p: 50.0 * p, state.params))
  _, metrics = jax.jit(steps.train_chunk, static_argnums=1)(state, 3)
  piece = rolls['train'][0]
  if reset_every_chunk:
    want = [direct_nll(steps.model, state.params, [piece[k:k + 11]]) for k in (0, 10, 20)]
  else:     # frame t's loss within the whole piece, averaged over each chunk's frames
    x = jnp.asarray(piece[:-1, None, :], jnp.float32)
    l = np.asarray(steps.model.apply({'params': state.params}, x)[0][:, 0], np.float64)
    y = piece[1:].astype(np.float64)
    per_frame = np.sum(np.logaddexp(0, l) - y * l, axis=-1)
    want = [per_frame[k:k + 10].mean() for k in (0, 10, 20)]
  np.testing.assert_allclose(np.asarray(metrics['loss']), want, rtol=1e-5)
  # The two readings differ after the first chunk (the carried state matters).
  other = [direct_nll(steps.model, state.params, [piece[k:k + 11]]) for k in (10, 20)]
  assert np.allclose(np.asarray(metrics['loss'])[1:], other, rtol=1e-3) == reset_every_chunk
