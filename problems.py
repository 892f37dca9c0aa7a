"""Problems: what the trainer needs from a task, for every kind of data.

A problem gives the trainer
- ``kind`` ('classification', 'regression', 'bernoulli', 'nade' or 'log_prob'), ``input_size``,
  ``output_size``;
- ``train_batch(key, step) -> batch``, jittable, data on the device, from the
  member's data key (the same all run long) and the step: a dict of
  time-major ``inputs [T, B, D]``, ``targets``, ``mask [T, B]`` (1 where the
  output is scored) and, for data read in windows of long sequences, a scalar
  ``reset`` (start from the initial state rather than the carried one);
- ``carries``: whether the state is carried from one batch to the next
  (truncated BPTT over long sequences);
- ``error(outputs, batch)``: the task's error rate on a batch;
- ``evaluator(...)``: how to measure a split.

``SyntheticProblem`` draws fresh sequences of the pathological problems;
``MusicProblem`` reads piano-rolls in chunks with the state carried within a
piece (Pascanu et al. 2013 sec. 4.2; Bengio et al. 2013 sec. 4.1);
``TextProblem`` reads a symbol stream (Penn Treebank characters or words) as
parallel streams of windows with the state carried along each stream
(Pascanu et al. 2013 sec. 4.2, Table 2; Bengio et al. 2013 sec. 4.2, Table 2).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

import distributed
from datasets import long_series
from datasets import music as music_lib
from datasets import pathological
from datasets import ptb
from models import nade


def per_step_loss(outputs: jax.Array, batch: dict, kind: str) -> jax.Array:
  """Loss of every step [T, B] (masked later), in nats."""
  if kind == 'classification':
    return optax.softmax_cross_entropy_with_integer_labels(outputs, batch['targets'])
  if kind == 'regression':
    return (outputs[..., 0] - batch['targets']) ** 2
  if kind == 'bernoulli':       # independent sigmoid units, summed over the keys
    return -nade.bernoulli_log_prob(outputs, batch['targets'])
  if kind == 'log_prob':
    # Word softmaxes (models.rnn.RecurrentNetwork with output='class_softmax' or
    # 'softmax'): the outputs are already log P(target) [T, B].
    return -outputs
  if kind == 'nade':
    # RNN-NADE (models.rnn.RecurrentNetwork with output='nade'): the outputs are
    # the teacher-forced conditional logits of p(v_d | v_<d, h_t), so the sum of
    # the keys' Bernoulli terms is the exact NADE log-likelihood of the frame.
    return -nade.bernoulli_log_prob(outputs, batch['targets'])
  raise ValueError(f'unknown task kind {kind!r}')


@dataclasses.dataclass(frozen=True)
class SyntheticProblem:
  """A pathological task with lengths drawn per batch from [min_length, max_length].

  Every batch is padded to the same static length so one compiled program
  serves every length; the scored steps are given by the batch's mask.
  """
  task: Any
  batch_size: int
  min_length: int
  max_length: int
  carries = False
  unit = 'fresh sequences'
  steps_per_epoch = None        # fresh data every step: no epochs

  @property
  def kind(self) -> str:
    return self.task.kind

  @property
  def output_size(self) -> int:
    return self.task.output_size

  @property
  def longest(self) -> int:
    """The longest length drawn: max_length - 1 for a range, as the authors'
    code draws min + randint(max - min) (Pascanu et al.'s trainingRNNs, RNN.py)."""
    return self.max_length - 1 if self.max_length > self.min_length else self.max_length

  def train_batch(self, key, step) -> dict:
    """Fresh sequences for ``step`` of the member whose data key is ``key``."""
    k_len, k_data = jax.random.split(jax.random.split(jax.random.fold_in(key, step))[0])
    length = jax.random.randint(k_len, (), self.min_length, self.longest + 1)
    return self.task.sample(k_data, self.batch_size, length, self.max_length)

  def summary(self) -> str:
    return ''

  def error(self, outputs, batch) -> jax.Array:
    return jnp.mean(pathological.sequence_errors(outputs, batch, self.kind))

  def eval_lengths(self, num_batches: int) -> list[int]:
    """Lengths of the evaluation batches, spread evenly over the training range."""
    if num_batches == 1 or self.min_length == self.longest:
      return [self.longest] * num_batches
    step = (self.longest - self.min_length) / (num_batches - 1)
    return [round(self.min_length + i * step) for i in range(num_batches)]

  def evaluator(self, apply_fn: Callable, initial_carry: Callable, train_config,
                eval_key) -> Callable:
    """``evaluate(params [P, ...], split, step) -> [dict per member]`` on fresh sequences.

    ``apply_fn(params, inputs, carry, reset) -> (outputs, carry)`` runs the model.

    Every member sees the same sequences (drawn from ``train.eval_seed``).
    """
    tc = train_config
    valid_key, test_key = jax.random.split(eval_key)

    def one_batch(params, key, length):
      batch = self.task.sample(key, tc.eval_batch_size, length, self.max_length)
      outputs, _ = apply_fn(params, batch['inputs'], None, None)
      mask = batch['mask']
      per_seq = jnp.sum(per_step_loss(outputs, batch, self.kind) * mask, 0) / jnp.maximum(
          jnp.sum(mask, 0), 1)
      return jnp.sum(per_seq), jnp.sum(pathological.sequence_errors(outputs, batch, self.kind))

    batch_fn = jax.jit(jax.vmap(one_batch, in_axes=(0, None, None)), static_argnums=2)

    def evaluate(params, split: str, step: int = 0) -> list[dict]:
      count = tc.eval_sequences if split == 'valid' else tc.test_sequences
      key = jax.random.fold_in(valid_key, step) if split == 'valid' else test_key
      num_batches = max(1, math.ceil(count / tc.eval_batch_size))
      total_loss = total_err = 0.0
      for i, length in enumerate(self.eval_lengths(num_batches)):
        loss, err = distributed.to_host(batch_fn(params, jax.random.fold_in(key, i), length))
        total_loss = total_loss + np.asarray(loss, np.float64)
        total_err = total_err + np.asarray(err, np.float64)
      n = num_batches * tc.eval_batch_size
      return [dict(loss=float(l) / n, error=float(e) / n, count=n)
              for l, e in zip(total_loss, total_err)]

    return evaluate


class MusicProblem:
  """Next-frame prediction on 88-key piano-rolls, truncated BPTT.

  Each split is packed once (``datasets.music.bptt_batches``: pieces bucketed
  by length, B pieces per batch, cut into chunks) and kept on the device.
  Training reads the batches of pieces in a fresh random order every epoch
  (``shuffle``; drawn on the device from the member's data key and the
  epoch, so each seed has its own order and a resumed run the same one),
  each batch's chunks in order: the state is carried from chunk to chunk
  within a batch of pieces and reset at its first chunk. With B = 1 (the
  papers' setting) an update sees one piece's chunk, and an epoch visits the
  pieces in a new order. ``shuffle=False`` walks the batches sorted by
  length, the same every epoch.
  Evaluation runs over whole pieces the same way. The loss is the negative
  log-likelihood per frame (nats, summed over the 88 keys, averaged over the
  real frames: padding is masked out). The validation and test error is 1 -
  the *expected* frame accuracy (Bay et al. 2009) of frames drawn from the
  model's independent keys, computed exactly
  (``models.nade.bernoulli_expected_frame_accuracy``), as Bengio et al.
  (2013) report it; the error in the training log thresholds the
  prediction at 1/2 (cheap, for monitoring).

  ``output='nade'`` (kind 'nade'): the model is an RNN-NADE
  (``models.rnn.RecurrentNetwork(output='nade')``) whose outputs are the
  teacher-forced NADE logits of the targets, so the loss is the exact NADE
  negative log-likelihood per frame. Validation and test error are then
  1 - the *expected* frame accuracy under the model (Bengio et al. 2013,
  Table 1), a Monte Carlo mean over ``train.accuracy_samples`` frames drawn
  from the model at every step (default 10; fixed keys from
  ``train.eval_seed``; standard error of a frame's estimate <= 0.5 /
  sqrt(samples), far less averaged over a split). The error in the
  training log thresholds the teacher-forced conditionals p(v_d | true
  v_<d), which see the target's lower keys: cheap, optimistic, not the
  evaluation's number.
  """
  output_size = music_lib.NUM_KEYS
  carries = True
  unit = 'frames'

  def __init__(self, name: str, rolls: dict, batch_size: int, chunk: int,
               output: str = 'bernoulli', shuffle: bool = True):
    """``rolls``: split -> list of piano-rolls [frames, 88] (``datasets.music``);
    ``output``: 'bernoulli' (independent keys) or 'nade' (an RNN-NADE);
    ``shuffle``: a new order of the training batches every epoch."""
    if output not in ('bernoulli', 'nade'):
      raise ValueError(f"music output {output!r} is not one of bernoulli, nade")
    self.kind = output
    self.name = name
    self.splits = {}
    self.padding_ratio = {}
    for split, pieces in rolls.items():
      packed = music_lib.bptt_batches(pieces, batch_size, chunk)
      self.splits[split] = tuple(jnp.asarray(a) for a in packed[:4])
      self.padding_ratio[split] = packed.padding_ratio
      if split == 'train':      # where each batch of pieces starts, and its chunks
        starts = np.flatnonzero(packed.reset)
        self._starts = jnp.asarray(starts, jnp.int32)
        self._counts = jnp.asarray(np.diff(starts, append=len(packed.reset)), jnp.int32)
    self.steps_per_epoch = int(self.splits['train'][0].shape[0])
    self.shuffle = shuffle

  @classmethod
  def load(cls, name: str, batch_size: int, chunk: int, data_dir: str | None = None,
           **kwargs):
    return cls(name, music_lib.load_music(name, data_dir), batch_size, chunk, **kwargs)

  def summary(self) -> str:
    pads = ', '.join(f'{k} {v:.2f}' for k, v in self.padding_ratio.items())
    return (f'{self.name}: {self.steps_per_epoch} chunks per epoch; padding / real frames: '
            f'{pads}')

  def _batch(self, split: str, n) -> dict:
    inputs, targets, mask, reset = self.splits[split]
    return dict(inputs=inputs[n].astype(jnp.float32), targets=targets[n].astype(jnp.float32),
                mask=mask[n], reset=reset[n])

  def train_batch(self, key, step) -> dict:
    return self._batch('train', self.train_chunk(key, step))

  def train_chunk(self, key, step) -> jax.Array:
    """Which training chunk ``step`` reads: the epoch's batches of pieces in
    the order drawn from ``fold_in(key, epoch)``, each batch's chunks in turn."""
    epoch, n = jnp.divmod(step, self.steps_per_epoch)
    if not self.shuffle:
      return n
    order = jax.random.permutation(jax.random.fold_in(key, epoch), self._starts.shape[0])
    ends = jnp.cumsum(self._counts[order])            # chunks read once batch i is done
    i = jnp.searchsorted(ends, n, side='right')       # the batch that holds chunk n
    return self._starts[order[i]] + n - (ends[i] - self._counts[order[i]])

  def error(self, outputs, batch) -> jax.Array:
    acc = nade.frame_accuracy((outputs > 0).astype(jnp.float32), batch['targets'])
    return 1.0 - jnp.sum(acc * batch['mask']) / jnp.maximum(jnp.sum(batch['mask']), 1)

  def evaluator(self, apply_fn: Callable, initial_carry: Callable, train_config,
                eval_key) -> Callable:
    """``evaluate(params [P, ...], split, step) -> [dict per member]`` over whole pieces.

    ``initial_carry(params, batch_size)`` gives the carry's shapes (every batch
    of pieces starts with a reset to the model's initial state). For kind
    'nade', ``apply_fn(params, inputs, carry, reset, targets=, sample_key=,
    num_samples=) -> (outputs, carry, samples [S, T, B, D])`` (``train.Steps.apply``).
    """
    samples = int(train_config.get('accuracy_samples', 10)) if train_config is not None else 10
    sample_key = eval_key if eval_key is not None else jax.random.key(0)

    def run_split(params, split):
      def body(carry_and_sums, n):
        carry, nll, correct, frames = carry_and_sums
        batch = self._batch(split, n)
        mask = batch['mask']
        if self.kind == 'nade':     # expected accuracy: Monte Carlo over model samples
          outputs, new_carry, drawn = apply_fn(
              params, batch['inputs'], carry, batch['reset'], targets=batch['targets'],
              sample_key=jax.random.fold_in(sample_key, n), num_samples=samples)
          acc = jnp.mean(nade.frame_accuracy(drawn, batch['targets']), 0)
        else:                       # exact expected accuracy of independent keys
          outputs, new_carry = apply_fn(params, batch['inputs'], carry, batch['reset'])
          acc = nade.bernoulli_expected_frame_accuracy(jax.nn.sigmoid(outputs),
                                                       batch['targets'])
        return (new_carry, nll + jnp.sum(per_step_loss(outputs, batch, self.kind) * mask),
                correct + jnp.sum(acc * mask), frames + jnp.sum(mask)), None
      num = self.splits[split][0].shape[0]
      batch_size = self.splits[split][0].shape[2]
      init = (initial_carry(params, batch_size), jnp.zeros(()), jnp.zeros(()), jnp.zeros(()))
      (_, nll, correct, frames), _ = jax.lax.scan(body, init, jnp.arange(num))
      return nll / frames, 1.0 - correct / frames, frames

    fns = {s: jax.jit(jax.vmap(functools.partial(run_split, split=s))) for s in self.splits}

    def evaluate(params, split: str, step: int = 0) -> list[dict]:
      nll, err, frames = distributed.to_host(fns[split](params))
      return [dict(loss=float(l), error=float(e), count=int(f))
              for l, e, f in zip(nll, err, frames)]

    return evaluate


def eval_streams(ids: np.ndarray, num_streams: int, window: int, shift: int = 1
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Every prediction of a stream, exactly once, as padded parallel windows.

  The P = len(ids) - shift predictions (input ids[i], target ids[i + shift])
  are cut into ``num_streams`` contiguous pieces of L = W * window positions,
  W = ceil(ceil(P / num_streams) / window); piece b holds positions
  [b L, (b + 1) L) and the tail past P is padding (mask 0). Unlike
  ``datasets.ptb.stream_batches`` (training) nothing is dropped, so the
  whole split is scored; ``num_streams=1`` is the unbroken stream.

  Returns:
    (inputs, targets, mask), each [W, window, num_streams] (ids int32, mask
    float32), time-major within a window.
  """
  ids = np.asarray(ids, np.int32)
  count = len(ids) - shift
  if count < 1 or num_streams < 1 or window < 1:
    raise ValueError(f'cannot score a stream of {len(ids)} symbols {shift} ahead '
                     f'with {num_streams} streams of windows of {window}')
  windows = math.ceil(math.ceil(count / num_streams) / window)
  size = num_streams * windows * window
  pad = lambda x: np.concatenate([x, np.zeros(size - count, x.dtype)])
  cut = lambda x: np.ascontiguousarray(
      pad(x).reshape(num_streams, windows, window).transpose(1, 2, 0))
  return (cut(ids[:count]), cut(ids[shift:]), cut(np.ones(count, np.float32)))


class TextProblem:
  """Symbol-level language modelling on one long stream, truncated BPTT.

  Training (``datasets.ptb.stream_batches``): the training stream is cut into
  B parallel streams, read in windows of ``chunk`` symbols; the state is
  carried from window to window and reset only at the first window of an
  epoch. The target of step t is the symbol ``ahead`` steps later (1:
  language modelling; 5: Pascanu et al.'s "predict the 5th character in the
  future"). Every step is scored by a softmax over the V symbols.

  Data stay on the device as ids [windows, chunk, B] (uint8 when V <= 256);
  each batch is one-hot float32 [chunk, B, V], made inside the step, since
  ``models.rnn.RecurrentNetwork`` reads float inputs through W_in (the
  paper's one-hot inputs to a plain RNN).

  Evaluation (``eval_streams``) scores every symbol of the split once, with
  ``num_eval_streams`` streams whose state is carried across all their
  windows (1 = the unbroken stream, as in Mikolov's rnnlm). The loss is the
  mean negative log-likelihood per predicted symbol in nats; ``bpc`` is the
  same in bits (nats / ln 2), the unit of the paper's Table 2; the error is
  1 - accuracy of the most probable symbol.

  ``level='word'`` (Bengio et al. 2013 sec. 4.2: PTB's 10k words): the
  batches hold the ids themselves, int32 [chunk, B] (the model reads them
  through rows of W_in, ``model_kwargs['input_vocab']``), and the model's
  outputs are log P(target) [T, B] from a word softmax
  (``model.output='class_softmax'`` or ``'softmax'``; kind 'log_prob'). The
  ``num_classes`` frequency classes of the training stream
  (``datasets.ptb.frequency_classes``) go to the model as
  ``model_kwargs['class_of_word']``. Evaluation reports ``ppl`` = exp(mean
  NLL per word) over the whole split; the error is not computed (NaN):
  the most probable word would need all V scores, which is what the class
  softmax avoids.
  """
  carries = True

  def __init__(self, name: str, streams: dict, vocab_size: int, batch_size: int, chunk: int,
               ahead: int = 1, num_eval_streams: int = 1, vocab: list[str] | None = None,
               level: str = 'char', num_classes: int = 30):
    """``streams``: split -> int ids [N] in [0, vocab_size); ``vocab[i]``: the symbol
    of id i (``datasets.ptb.load_ptb``); ``level``: 'char' (one-hot float inputs,
    logits out) or 'word' (ids in, log P(target) out; class docstring)."""
    if level not in ('char', 'word'):
      raise ValueError(f"text level {level!r} is not 'char' or 'word'")
    self.name, self.chunk, self.ahead, self.vocab = name, chunk, ahead, vocab
    self.level = level
    self.kind = 'classification' if level == 'char' else 'log_prob'
    self.unit = 'symbols' if level == 'char' else 'words'
    self.output_size = self.vocab_size = vocab_size
    self.num_eval_streams = num_eval_streams
    self.streams = {k: np.asarray(v) for k, v in streams.items()}
    self.model_kwargs = {}
    if level == 'word':
      class_of_word, _ = ptb.frequency_classes(self.streams['train'], vocab_size, num_classes)
      self.class_of_word = class_of_word
      self.model_kwargs = dict(input_vocab=vocab_size,
                               class_of_word=tuple(int(c) for c in class_of_word))
    self._dtype = np.uint8 if vocab_size <= 256 else np.int32
    inputs, targets = ptb.stream_batches(self.streams['train'], batch_size, chunk, ahead)
    if not len(inputs):
      raise ValueError(f'{name}: {len(self.streams["train"])} training symbols make no window '
                       f'of {chunk} steps for {batch_size} streams')
    for split in ('valid', 'test'):      # found here, not once evaluation starts
      if len(self.streams[split]) <= ahead:
        raise ValueError(f'{name}: the {split} split has {len(self.streams[split])} symbols, '
                         f'none to score {ahead} ahead')
    self.train_inputs = jnp.asarray(inputs.astype(self._dtype))
    self.train_targets = jnp.asarray(targets.astype(self._dtype))
    self.steps_per_epoch = int(inputs.shape[0])
    self._eval_data = {}

  @classmethod
  def load(cls, batch_size: int, chunk: int, ahead: int = 1, num_eval_streams: int = 1,
           data_dir: str | None = None, level: str = 'char', num_classes: int = 30):
    """Penn Treebank characters (50 symbols) or words (10,000) from the data folder."""
    streams, vocab = ptb.load_ptb(level, data_dir)
    return cls(f'ptb_{level}', streams, len(vocab), batch_size, chunk, ahead, num_eval_streams,
               vocab, level, num_classes)

  def summary(self) -> str:
    used = self.train_inputs.size
    return (f'{self.name}: {self.steps_per_epoch} windows of {self.chunk} x '
            f'{self.train_inputs.shape[2]} streams per epoch ({used} of '
            f'{len(self.streams["train"])} training symbols), predicting {self.ahead} ahead; '
            + ', '.join(f'{k} {len(v) - self.ahead}' for k, v in self.streams.items()
                        if k != 'train') + ' scored symbols')

  def _inputs(self, ids) -> jax.Array:
    """What the model reads: one-hot float32 [T, B, V] (characters) or the
    ids int32 [T, B] (words)."""
    if self.level == 'word':
      return ids.astype(jnp.int32)
    return jax.nn.one_hot(ids, self.vocab_size, dtype=jnp.float32)

  def train_batch(self, key, step) -> dict:
    n = step % self.steps_per_epoch
    ids = self.train_inputs[n]
    return dict(inputs=self._inputs(ids), targets=self.train_targets[n].astype(jnp.int32),
                mask=jnp.ones(ids.shape[:2], jnp.float32), reset=n == 0)

  def error(self, outputs, batch) -> jax.Array:
    if self.level == 'word':     # not computed (class docstring)
      return jnp.full((), jnp.nan)
    wrong = (jnp.argmax(outputs, -1) != batch['targets']) * batch['mask']
    return jnp.sum(wrong) / jnp.maximum(jnp.sum(batch['mask']), 1)

  def eval_data(self, split: str) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(inputs, targets, mask) [W, chunk, streams] of a split, packed once."""
    if split not in self._eval_data:
      packed = eval_streams(self.streams[split], self.num_eval_streams, self.chunk, self.ahead)
      self._eval_data[split] = (jnp.asarray(packed[0].astype(self._dtype)),
                                jnp.asarray(packed[1].astype(self._dtype)),
                                jnp.asarray(packed[2]))
    return self._eval_data[split]

  def evaluator(self, apply_fn: Callable, initial_carry: Callable, train_config,
                eval_key) -> Callable:
    """``evaluate(params [P, ...], split, step) -> [dict per member]`` over a whole split.

    ``apply_fn(params, inputs, carry, reset) -> (outputs, carry)`` runs the
    model (words: also ``targets=``, the ids it scores); ``initial_carry(params, streams)`` gives the carry's shapes (the
    first window resets to the model's initial state; later ones go on from
    the carried state). Sums are per window in float32 and added in float64.
    """

    def run_split(params, inputs, targets, mask):
      def body(carry, xs):
        n, x, y, m = xs
        y = y.astype(jnp.int32)
        if self.level == 'word':
          outputs, carry = apply_fn(params, self._inputs(x), carry, n == 0, targets=y)
          nll, right = -outputs, jnp.full(y.shape, jnp.nan)
        else:
          outputs, carry = apply_fn(params, self._inputs(x), carry, n == 0)
          nll = optax.softmax_cross_entropy_with_integer_labels(outputs, y)
          right = (jnp.argmax(outputs, -1) == y)
        return carry, (jnp.sum(nll * m), jnp.sum(right * m))
      init = initial_carry(params, inputs.shape[2])
      _, (nll, right) = jax.lax.scan(body, init, (jnp.arange(inputs.shape[0]), inputs,
                                                   targets, mask))
      return nll, right

    run = jax.jit(jax.vmap(run_split, in_axes=(0, None, None, None)))

    def evaluate(params, split: str, step: int = 0) -> list[dict]:
      inputs, targets, mask = self.eval_data(split)
      nll, right = distributed.to_host(run(params, inputs, targets, mask))
      count = len(self.streams[split]) - self.ahead
      out = []
      for l, r in zip(nll, right):
        loss = float(np.sum(l, dtype=np.float64)) / count
        score = (dict(ppl=math.exp(loss)) if self.level == 'word'
                 else dict(bpc=loss / math.log(2)))
        out.append(dict(loss=loss, error=1.0 - float(np.sum(r, dtype=np.float64)) / count,
                        count=count, **score))
      return out

    return evaluate


def make_problem(config: ml_collections.ConfigDict):
  c = config.task
  output = config.get('model', {}).get('output', 'linear')
  if c.name == 'music':
    # model.output='nade' makes the frames' model an RNN-NADE (kind 'nade')
    kwargs = {'output': 'nade'} if output == 'nade' else {}
    return MusicProblem.load(c.kwargs.dataset, c.batch_size, c.chunk,
                             config.get('data_dir') or None, shuffle=c.get('shuffle', True),
                             **kwargs)
  if c.name == 'ptb_word':
    if output not in ('class_softmax', 'softmax'):
      raise ValueError(f"task.name=ptb_word needs model.output='class_softmax' or 'softmax', "
                       f"not {output!r}")
    return TextProblem.load(c.batch_size, c.chunk, c.kwargs.get('ahead', 1),
                            c.get('eval_streams', 1), config.get('data_dir') or None,
                            level='word', num_classes=config.model.get('num_classes', 30))
  if output != 'linear':
    raise ValueError(f'model.output={output!r} is for task.name=music or ptb_word, '
                     f'not {c.name!r}')
  if c.name == 'ptb_char':
    return TextProblem.load(c.batch_size, c.chunk, c.kwargs.get('ahead', 1),
                            c.get('eval_streams', 1), config.get('data_dir') or None)
  if c.name == 'long_series':
    return LongSeriesProblem.generate(c.chunk, **dict(c.kwargs))
  kwargs = dict(c.get('kwargs', {}))
  return SyntheticProblem(pathological.make_task(c.name, **kwargs), c.batch_size,
                          c.min_length, c.max_length)


class LongSeriesProblem:
  """Muccino (2019): regress the discounted future return of a long price series.

  ``datasets.long_series`` makes the series (prices [N, L]), the targets
  R_t and the inputs x_{t,k} = p_t - p_{t-k}, k = 1..``lags``. Training reads
  all N training series as one batch (the post: "Our training batch consists
  of all 15 sequences together"), in L / ``chunk`` consecutive chunks of
  ``chunk`` steps ("batch sequence length" L / chunk): the state is carried
  from chunk to chunk and reset at the first chunk of each epoch, i.e. at
  the start of the series. ``chunk = L`` is the post's baseline (the whole
  series per update).

  Normalisation (the post does not say): each input feature k is divided by
  its standard deviation over the training series, and the targets by
  theirs, so a model that predicts 0 has a loss near 1 (the loss is the
  mean squared error per step in these units). Prices are stored relative
  to the offset, time-major and padded with p_0 at the front, [lags + L, N];
  the features of a chunk are computed on the device from them.

  Evaluation runs each split's series whole, in windows of ``eval_chunk``
  steps with the state carried (the same for every training chunk length).
  The error is the fraction of steps where the sign of the prediction
  differs from the target's: the wrong action (buy or sell).
  """
  kind = 'regression'
  carries = True
  unit = 'steps'
  output_size = 1

  def __init__(self, series: dict, chunk: int, lags: int = 128, discount: float = 0.99,
               eval_chunk: int = 1000, offset: float = 100.0):
    """``series``: split -> prices [N, L] (``datasets.long_series.make_splits``)."""
    length = series['train'].shape[1]
    for n in (chunk, eval_chunk):
      if length % n:
        raise ValueError(f'long_series: chunk {n} does not divide the series length {length}')
    self.chunk, self.eval_chunk, self.lags, self.discount = chunk, eval_chunk, lags, discount
    self.length, self.num_series = length, series['train'].shape[0]
    self.steps_per_epoch = length // chunk
    train = np.asarray(series['train'], np.float64)
    padded_train = np.concatenate([np.repeat(train[:, :1], lags, 1), train], 1)
    self.input_scale = np.array(
        [np.std(train - padded_train[:, lags - k:lags - k + length]) for k in range(1, lags + 1)])
    self.target_scale = float(np.std(long_series.discounted_returns(train, discount)))
    self.prices, self.targets = {}, {}
    for split, p in series.items():
      p = np.asarray(p, np.float64)
      padded = np.concatenate([np.repeat(p[:, :1], lags, 1), p], 1) - offset
      self.prices[split] = jnp.asarray(padded.T.astype(np.float32))         # [lags + L, N]
      self.targets[split] = jnp.asarray(
          (long_series.discounted_returns(p, discount) / self.target_scale).T.astype(np.float32))
    self._scale = jnp.asarray(self.input_scale.astype(np.float32))

  @classmethod
  def generate(cls, chunk: int, num_series: int = 15, length: int = 20_000, num_valid: int = 3,
               num_test: int = 3, data_seed: int = 0, lags: int = 128, discount: float = 0.99,
               eval_chunk: int = 1000, noise_std: float = 0.01,
               frequencies: tuple = (0.0002, 0.0002)):
    """The post's 15 series of 20,000 steps (``task.kwargs`` override any argument)."""
    spec = long_series.SeriesSpec(length=length, noise_std=noise_std,
                                  frequencies=tuple(frequencies))
    return cls(long_series.make_splits(data_seed, num_series, num_valid, num_test, spec),
               chunk, lags, discount, eval_chunk, spec.offset)

  @property
  def input_size(self) -> int:
    return self.lags

  def summary(self) -> str:
    return (f'long_series: {self.num_series} series of {self.length} steps in '
            f'{self.steps_per_epoch} chunks of {self.chunk}; {self.lags} lags, discount '
            f'{self.discount}; valid {self.prices["valid"].shape[1]}, test '
            f'{self.prices["test"].shape[1]} series')

  def window(self, split: str, start, size: int) -> dict:
    """Steps [start, start + size) of every series of a split: inputs [size, N, lags],
    targets [size, N], mask [size, N]."""
    prices = self.prices[split]
    w = jax.lax.dynamic_slice_in_dim(prices, start, size + self.lags, 0)   # [lags + size, N]
    now = w[self.lags:]
    lagged = jnp.stack([w[self.lags - k:self.lags - k + size] for k in range(1, self.lags + 1)],
                       -1)
    inputs = (now[..., None] - lagged) / self._scale
    targets = jax.lax.dynamic_slice_in_dim(self.targets[split], start, size, 0)
    return dict(inputs=inputs, targets=targets, mask=jnp.ones(targets.shape, jnp.float32))

  def train_batch(self, key, step) -> dict:
    n = step % self.steps_per_epoch
    return dict(self.window('train', n * self.chunk, self.chunk), reset=n == 0)

  def error(self, outputs, batch) -> jax.Array:
    wrong = (jnp.sign(outputs[..., 0]) != jnp.sign(batch['targets'])) * batch['mask']
    return jnp.sum(wrong) / jnp.maximum(jnp.sum(batch['mask']), 1)

  def evaluator(self, apply_fn: Callable, initial_carry: Callable, train_config,
                eval_key) -> Callable:
    """``evaluate(params [P, ...], split, step) -> [dict per member]`` over whole series.

    ``apply_fn(params, inputs, carry, reset) -> (outputs, carry)``; the state
    starts from the initial one and is carried across the windows.
    """

    def run_split(params, split):
      def body(carry, n):
        batch = self.window(split, n * self.eval_chunk, self.eval_chunk)
        outputs, carry = apply_fn(params, batch['inputs'], carry, n == 0)
        return carry, (jnp.sum(per_step_loss(outputs, batch, self.kind)),
                       jnp.sum(self.error(outputs, batch)) * batch['mask'].size)
      init = initial_carry(params, self.prices[split].shape[1])
      _, (sq, wrong) = jax.lax.scan(body, init, jnp.arange(self.length // self.eval_chunk))
      return sq, wrong

    fns = {s: jax.jit(jax.vmap(functools.partial(run_split, split=s))) for s in self.prices}

    def evaluate(params, split: str, step: int = 0) -> list[dict]:
      sq, wrong = distributed.to_host(fns[split](params))
      count = self.length * self.prices[split].shape[1]
      return [dict(loss=float(np.sum(s, dtype=np.float64)) / count,
                   error=float(np.sum(w, dtype=np.float64)) / count, count=count)
              for s, w in zip(sq, wrong)]

    return evaluate
