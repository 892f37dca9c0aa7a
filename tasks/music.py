"""Polyphonic music: next-frame prediction on 88-key piano-rolls, truncated
BPTT (Pascanu et al. 2013 sec. 4.2; Bengio et al. 2013 sec. 4.1)."""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from datasets import music as music_lib
from models import nade
from tasks.base import per_step_loss, windowed_evaluator

OUTPUTS = ('bernoulli', 'nade')


def max_notes(rolls: dict) -> int:
  """The most notes in any frame of any split (at least 1): what
  ``models.nade.nade_logits`` needs to score frames without a scan."""
  return max([1] + [int((np.asarray(p) != 0).sum(-1).max(initial=0)) for pieces in rolls.values()
                    for p in pieces])


class MusicTask:
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
  length, the same every epoch. ``reset_every_chunk`` starts every training
  chunk from the initial state instead: each is a sequence of its own.
  ``shuffle_chunks`` goes further: every chunk is a sequence of its own and
  an epoch reads all the chunks of all the pieces in a new random order
  (consecutive updates come from unrelated pieces), the reading of "sequences
  of 200 steps" as a data set of independent examples.
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
  negative log-likelihood per frame (computed from the segments between a
  frame's notes, ``model_kwargs['nade_max_notes']`` the data's most notes in
  a frame: ``max_notes``). Validation and test error are then
  1 - the *expected* frame accuracy under the model (Bengio et al. 2013,
  Table 1), a Monte Carlo mean over ``train.accuracy_samples`` frames drawn
  from the model at every step (default 10; fixed keys from
  ``train.eval_seed``; standard error of a frame's estimate <= 0.5 /
  sqrt(samples), far less averaged over a split). Splits other than test
  (validation, scored every epoch and selected on the loss, not the error)
  draw ``train.valid_accuracy_samples`` instead when it is set (> 0): the
  sampling is most of a NADE validation pass. The error in the
  training log thresholds the teacher-forced conditionals p(v_d | true
  v_<d), which see the target's lower keys: cheap, optimistic, not the
  evaluation's number.
  """
  output_size = music_lib.NUM_KEYS
  carries = True
  unit = 'frames'
  model_kwargs = {}

  def __init__(self, name: str, rolls: dict, batch_size: int, chunk: int,
               output: str = 'bernoulli', shuffle: bool = True, reset_every_chunk: bool = False,
               shuffle_chunks: bool = False):
    """``rolls``: split -> list of piano-rolls [frames, 88] (``load``);
    ``output``: 'bernoulli' (independent keys) or 'nade' (an RNN-NADE);
    ``shuffle``: a new order of the training batches every epoch;
    ``reset_every_chunk``: every training chunk starts from the initial
    state, a sequence of its own (evaluation still carries the state over
    whole pieces); ``shuffle_chunks``: that, and the chunks of all pieces in
    a new random order every epoch."""
    if output not in OUTPUTS:
      raise ValueError(f"music output {output!r} is not one of {', '.join(OUTPUTS)}")
    if shuffle_chunks and not shuffle:
      raise ValueError('task.shuffle_chunks=True shuffles the chunks every epoch; it needs '
                       'task.shuffle=True (False walks them in a fixed order)')
    self.kind = output
    self.name = name
    self.data = rolls
    if output == 'nade':      # the NADE scores each frame from the segments between its notes
      self.model_kwargs = {'nade_max_notes': max_notes(rolls)}
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
    self.reset_every_chunk = reset_every_chunk or shuffle_chunks
    self.shuffle_chunks = shuffle_chunks

  def summary(self) -> str:
    pads = ', '.join(f'{k} {v:.2f}' for k, v in self.padding_ratio.items())
    return (f'{self.name}: {self.steps_per_epoch} chunks per epoch; padding / real frames: '
            f'{pads}')

  def _batch(self, split: str, n) -> dict:
    inputs, targets, mask, reset = self.splits[split]
    return dict(inputs=inputs[n].astype(jnp.float32), targets=targets[n].astype(jnp.float32),
                mask=mask[n], reset=reset[n])

  def train_batch(self, key, step) -> dict:
    batch = self._batch('train', self.train_chunk(key, step))
    if self.reset_every_chunk:
      batch['reset'] = jnp.ones_like(batch['reset'])
    return batch

  def train_chunk(self, key, step) -> jax.Array:
    """Which training chunk ``step`` reads: the epoch's batches of pieces in
    the order drawn from ``fold_in(key, epoch)``, each batch's chunks in turn
    (``shuffle_chunks``: every chunk on its own, in that epoch's order)."""
    epoch, n = jnp.divmod(step, self.steps_per_epoch)
    if not self.shuffle:
      return n
    if self.shuffle_chunks:
      return jax.random.permutation(jax.random.fold_in(key, epoch), self.steps_per_epoch)[n]
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
    num_samples=) -> (outputs, carry, samples [S, T, B, D])`` (``train.Trainer.apply``).
    """
    tc = train_config if train_config is not None else {}
    test_samples = int(tc.get('accuracy_samples', 10))
    other_samples = int(tc.get('valid_accuracy_samples', 0)) or test_samples
    sample_key = eval_key if eval_key is not None else jax.random.key(0)

    def score_window(params, split, n, carry):
      batch = self._batch(split, n)
      mask = batch['mask']
      if self.kind == 'nade':     # expected accuracy: Monte Carlo over model samples
        outputs, carry, drawn = apply_fn(
            params, batch['inputs'], carry, batch['reset'], targets=batch['targets'],
            sample_key=jax.random.fold_in(sample_key, n),
            num_samples=test_samples if split == 'test' else other_samples)
        acc = jnp.mean(nade.frame_accuracy(drawn, batch['targets']), 0)
      else:                       # exact expected accuracy of independent keys
        outputs, carry, _ = apply_fn(params, batch['inputs'], carry, batch['reset'])
        acc = nade.bernoulli_expected_frame_accuracy(jax.nn.sigmoid(outputs), batch['targets'])
      # sums over the window's frames, per column (piece) [B]
      return carry, (jnp.sum(per_step_loss(outputs, batch, self.kind) * mask, 0),
                     jnp.sum((1.0 - acc) * mask, 0), jnp.sum(mask, 0))

    # split -> (chunks, pieces per batch): inputs are [chunks, chunk, B, 88]
    shapes = {s: (a[0].shape[0], a[0].shape[2]) for s, a in self.splits.items()}
    return windowed_evaluator(score_window, shapes, initial_carry,
                              sequences={s: self.pieces(s) for s in self.splits})

  def pieces(self, split: str) -> np.ndarray:
    """Which piece column b of chunk n of ``split`` reads: int [chunks, B]
    (a batch of pieces starts at each reset; empty columns score nothing)."""
    inputs, _, _, reset = self.splits[split]
    batch = np.cumsum(np.asarray(reset)) - 1
    width = inputs.shape[2]
    return batch[:, None] * width + np.arange(width)[None, :]


def load(name: str, data_dir=None) -> dict[str, list[np.ndarray]]:
  """The piano-rolls of data set ``name`` (``datasets.music.load_music``):
  split -> [uint8 [frames, 88]], what ``MusicTask`` and ``build`` take."""
  return music_lib.load_music(name, data_dir)


def data_files(config: ml_collections.ConfigDict) -> list[tuple[str, str]]:
  """What ``build`` reads: (path in the data folder, its ``datasets.download`` target)."""
  return [(path, 'music') for path in music_lib.data_files(config.task.kwargs.dataset)]


def build(config: ml_collections.ConfigDict, data: dict | None = None) -> MusicTask:
  """``task.kwargs.dataset`` read in chunks of ``task.chunk`` frames, B =
  ``task.batch_size`` pieces at a time; ``model.output='nade'`` makes the
  frames' model an RNN-NADE (kind 'nade'). ``data``: the piano-rolls
  (``load``'s form) in place of the data set's."""
  c = config.task
  output = 'nade' if config.get('model', {}).get('output', 'linear') == 'nade' else 'bernoulli'
  rolls = load(c.kwargs.dataset, config.get('data_dir') or None) if data is None else data
  return MusicTask(c.kwargs.dataset, rolls, c.batch_size, c.chunk, output=output,
                   shuffle=c.get('shuffle', True), reset_every_chunk=c.get('reset_every_chunk', False),
                   shuffle_chunks=c.get('shuffle_chunks', False))
