"""Polyphonic music corpora (Boulanger-Lewandowski et al., ICML 2012).

The four data sets used for next-frame prediction by Pascanu et al. (2013,
"On the difficulty of training recurrent neural networks") and Bengio
et al. (2013, "Advances in optimizing recurrent networks"). A piece is
a piano roll `uint8 [frames, 88]`, `x[t, note - 21] = 1` for each MIDI note
(21..108) sounding at frame t.

For training, `bptt_batches` packs a split into fixed-shape, time-major chunk
arrays for truncated BPTT that a jitted trainer keeps on device and indexes
by step (see its docstring).
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

import numpy as np

from datasets import _files

NAMES = ('JSB Chorales', 'MuseData', 'Nottingham', 'Piano-midi.de')
ALIASES = {'jsb': 'JSB Chorales', 'musedata': 'MuseData',
           'nottingham': 'Nottingham', 'piano': 'Piano-midi.de'}
SPLITS = ('train', 'valid', 'test')
LOWEST_NOTE, NUM_KEYS = 21, 88   # A0 .. C8, the 88 keys of a piano

# Content fingerprints (pieces, frames, note-ons) of the original files, from
# shared/data/README.md. Bytes differ between pickle versions; content doesn't.
FINGERPRINTS = {
    'JSB Chorales': {'train': (229, 13807, 53824),
                     'valid': (76, 4602, 17811),
                     'test': (77, 4725, 18367)},
    'MuseData': {'train': (524, 245202, 856543),
                 'valid': (135, 82755, 287893),
                 'test': (124, 64339, 211857)},
    'Nottingham': {'train': (694, 176561, 699403),
                   'valid': (173, 45513, 180192),
                   'test': (170, 44463, 177421)},
    'Piano-midi.de': {'train': (87, 75911, 231089),
                      'valid': (12, 8540, 27623),
                      'test': (25, 19036, 56067)},
}


def canonical_name(name: str) -> str:
  """'jsb' / 'JSB Chorales' / 'jsb chorales' -> 'JSB Chorales', etc."""
  key = name.strip().lower()
  for full in NAMES:
    if key == full.lower():
      return full
  if key in ALIASES:
    return ALIASES[key]
  raise ValueError(f'unknown music data set {name!r}; expected one of '
                   f'{list(NAMES)} or aliases {list(ALIASES)}')


def file_name(name: str) -> str:
  """File name of the original distribution, e.g. 'JSB Chorales.pickle'."""
  return f'{canonical_name(name)}.pickle'


def piano_roll(piece) -> np.ndarray:
  """A piece (list of frames, each a tuple of MIDI notes) -> uint8 [T, 88]."""
  lengths = np.fromiter(map(len, piece), np.int64, count=len(piece))
  notes = np.fromiter(itertools.chain.from_iterable(piece), np.int64,
                      count=int(lengths.sum()))
  keys = notes - LOWEST_NOTE
  bad = (keys < 0) | (keys >= NUM_KEYS)
  if bad.any():
    frame = int(np.repeat(np.arange(len(piece)), lengths)[bad.argmax()])
    raise ValueError(f'MIDI note {int(notes[bad.argmax()])} at frame {frame} '
                     f'is outside the piano range {LOWEST_NOTE}..'
                     f'{LOWEST_NOTE + NUM_KEYS - 1}')
  roll = np.zeros((len(piece), NUM_KEYS), np.uint8)
  roll[np.repeat(np.arange(len(piece)), lengths), keys] = 1
  return roll


def piano_rolls(raw) -> dict[str, list[np.ndarray]]:
  """The unpickled dict {split: [piece]} -> {split: [uint8 [T, 88]]}."""
  if not isinstance(raw, dict) or not set(SPLITS) <= set(raw):
    raise ValueError(f'expected a dict with keys {SPLITS}, got '
                     f'{type(raw).__name__}'
                     + (f' with keys {sorted(raw)}' if isinstance(raw, dict)
                        else ''))
  return {split: [piano_roll(p) for p in raw[split]] for split in SPLITS}


def fingerprint(pieces) -> tuple[int, int, int]:
  """(pieces, frames, note-ons) of a list of piano rolls [T, 88].

  note-ons counts active (frame, key) pairs: JSB train has 53824 over 13807
  frames, the mean polyphony of 3.9 the papers quote.
  """
  return (len(pieces), sum(len(p) for p in pieces),
          sum(int(np.count_nonzero(p)) for p in pieces))


def check_fingerprints(name: str, rolls, expected=None) -> None:
  """Raises ValueError unless every split matches FINGERPRINTS[name]."""
  expected = expected or FINGERPRINTS[canonical_name(name)]
  for split in SPLITS:
    got = fingerprint(rolls[split])
    if got != tuple(expected[split]):
      raise ValueError(
          f'{name} {split}: content fingerprint (pieces, frames, note-ons) '
          f'is {got}, expected {tuple(expected[split])}')


def load_music(name: str, data_dir=None) -> dict[str, list[np.ndarray]]:
  """Loads one data set as {'train'|'valid'|'test': [uint8 [frames, 88]]}.

  Args:
    name: 'JSB Chorales', 'MuseData', 'Nottingham', 'Piano-midi.de' or an
      alias ('jsb', 'musedata', 'nottingham', 'piano').
    data_dir: data folder (config) > $RNNOPT_DATA > ~/.cache/rnnopt.

  Raises:
    DataFileMissing: when `music/<Name>.pickle` is absent.
  """
  path = _files.require(f'music/{file_name(name)}', data_dir, 'music')
  return piano_rolls(_files.safe_load(path))


class MusicBatches(NamedTuple):
  """A split packed for truncated BPTT; N chunks of `chunk` frames, B pieces.

  inputs:  uint8 [N, chunk, B, 88]; time-major within a chunk.
  targets: uint8 [N, chunk, B, 88]; targets[n, t] is the frame after
    inputs[n, t] in the same piece (across chunk ends too).
  mask:    float32 [N, chunk, B]; 1 where the target is a real frame (every
    frame of a piece except its last); 0 on the last frame and on padding.
  reset:   bool [N]; True on the first chunk of each batch of pieces: start
    from the initial state there, else carry the final state of chunk n-1.
  padding_ratio: float, (N * chunk * B - real frames) / real frames; a
    Python float, so put only the four arrays on device.
  """
  inputs: np.ndarray
  targets: np.ndarray
  mask: np.ndarray
  reset: np.ndarray
  padding_ratio: float


def bptt_batches(pieces, batch_size: int, chunk: int, *,
                 sort_by_length: bool = True) -> MusicBatches:
  """Packs pieces into batches of B pieces, cut into chunks for TBPTT.

  Pieces are sorted by length (stable) and grouped B at a time, so pieces of
  similar length share a batch; each batch is padded to the next multiple of
  `chunk` frames of its longest piece (the last batch with empty pieces if
  fewer than B remain). The chunks of all batches are concatenated in order,
  so step n of an epoch is `inputs[n]`: a jitted trainer keeps the arrays on
  device and does `h = where(reset[n], h0, h)` before chunk n. Truncated BPTT
  lengths: 100 in Bengio et al. (2013), 200 in Pascanu et al. (2013).

  Next-frame prediction: input frame t predicts frame t+1, so a piece of T
  frames has T-1 targets and `mask.sum() == sum(T - 1)`.

  Args:
    pieces: list of piano rolls [T, 88].
    batch_size: B, pieces per batch.
    chunk: frames per chunk (truncation length).
    sort_by_length: bucket by length; False keeps the given order.

  Returns:
    MusicBatches (shapes in its docstring).
  """
  order = (np.argsort([len(p) for p in pieces], kind='stable')
           if sort_by_length else np.arange(len(pieces)))
  groups = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
  num_chunks = [max(1, -(-max(len(pieces[i]) for i in g) // chunk))
                for g in groups]
  total = sum(num_chunks)
  inputs = np.zeros((total, chunk, batch_size, NUM_KEYS), np.uint8)
  targets = np.zeros_like(inputs)
  mask = np.zeros((total, chunk, batch_size), np.float32)
  reset = np.zeros((total,), bool)
  start = 0
  for group, n in zip(groups, num_chunks):
    reset[start] = True
    # [n, chunk, B, ...] -> [n * chunk, B, ...] are views: write whole pieces.
    x = inputs[start:start + n].reshape(n * chunk, batch_size, NUM_KEYS)
    y = targets[start:start + n].reshape(n * chunk, batch_size, NUM_KEYS)
    m = mask[start:start + n].reshape(n * chunk, batch_size)
    for b, i in enumerate(group):
      piece = pieces[i]
      if len(piece) == 0:
        continue
      x[:len(piece), b] = piece
      y[:len(piece) - 1, b] = piece[1:]
      m[:len(piece) - 1, b] = 1
    start += n
  frames = sum(len(p) for p in pieces)
  padding = (inputs.shape[0] * chunk * batch_size - frames) / max(frames, 1)
  return MusicBatches(inputs, targets, mask, reset, padding)
