"""Language modelling on one long symbol stream: Penn Treebank characters or
words, truncated BPTT (Pascanu et al. 2013 sec. 4.2, Table 2; Bengio et al.
2013 sec. 4.2, Table 2)."""

from __future__ import annotations

import math
from typing import Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from datasets import ptb
from tasks.base import windowed_evaluator


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


class TextTask:
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
    self.data = (streams, vocab_size if vocab is None else vocab)   # what build takes
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

    ``apply_fn(params, inputs, carry, reset) -> (outputs, carry, _)`` runs the
    model (words: also ``targets=``, the ids it scores); ``initial_carry(params,
    streams)`` gives the carry's shapes (the first window resets to the
    model's initial state; later ones go on from the carried state).
    Characters add ``bpc``, words ``ppl``.
    """
    data = {s: self.eval_data(s) for s in self.streams if s != 'train'}

    def score_window(params, split, n, carry):
      inputs, targets, mask = (a[n] for a in data[split])
      y = targets.astype(jnp.int32)
      if self.level == 'word':
        outputs, carry, _ = apply_fn(params, self._inputs(inputs), carry, n == 0, targets=y)
        nll, wrong = -outputs, jnp.full(y.shape, jnp.nan)
      else:
        outputs, carry, _ = apply_fn(params, self._inputs(inputs), carry, n == 0)
        nll = optax.softmax_cross_entropy_with_integer_labels(outputs, y)
        wrong = jnp.argmax(outputs, -1) != y
      return carry, (jnp.sum(nll * mask), jnp.sum(wrong * mask), jnp.sum(mask))

    more = ((lambda loss: dict(ppl=math.exp(loss))) if self.level == 'word'
            else (lambda loss: dict(bpc=loss / math.log(2))))
    # split -> (windows, streams): packed [W, chunk, streams]
    shapes = {s: (a[0].shape[0], a[0].shape[2]) for s, a in data.items()}
    return windowed_evaluator(score_window, shapes, initial_carry, more)


def load(level: str = 'char', data_dir=None) -> tuple[dict[str, np.ndarray], list[str]]:
  """Penn Treebank characters (50 symbols) or words (10,000) from the data
  folder (``datasets.ptb.load_ptb``): (split -> int32 ids [N], the symbols),
  what ``build`` takes as ``data``."""
  return ptb.load_ptb(level, data_dir)


def data_files(config: ml_collections.ConfigDict) -> list[tuple[str, str]]:
  """What ``build`` reads: (path in the data folder, its ``datasets.download`` target)."""
  return [(path, 'ptb') for path in ptb.data_files(config.task.name.removeprefix('ptb_'))]


def build(config: ml_collections.ConfigDict, data: tuple | None = None) -> TextTask:
  """``task.name`` 'ptb_char' or 'ptb_word': B = ``task.batch_size`` streams
  read in windows of ``task.chunk``, predicting ``task.kwargs.ahead`` symbols
  ahead (default 1), scored with ``task.eval_streams`` streams (default 1).
  Words cut the vocabulary into ``model.num_classes`` frequency classes
  (default 30).

  ``data``: (split -> int ids [N], the symbols or just their number V) in
  place of Penn Treebank (``load``'s form).
  """
  c = config.task
  level = c.name.removeprefix('ptb_')
  streams, vocab = load(level, config.get('data_dir') or None) if data is None else data
  size, symbols = (vocab, None) if isinstance(vocab, int) else (len(vocab), vocab)
  kwargs = ({} if level == 'char' else
            dict(level=level, num_classes=config.model.get('num_classes', 30)))
  return TextTask(c.name, streams, size, c.batch_size, c.chunk, c.kwargs.get('ahead', 1),
                  c.get('eval_streams', 1), symbols, **kwargs)
