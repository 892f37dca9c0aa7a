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

import hashlib
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
# shared/data/README.md, and the SHA-256 of their content (`content_digest`,
# which sees every note). Bytes differ between pickle versions; content doesn't.
FINGERPRINTS = {
    'JSB Chorales': {'train': (229, 13807, 53824),
                     'valid': (76, 4602, 17811),
                     'test': (77, 4725, 18367),
                 'sha256': '0b220a5020b9c0c5f39d5b395e79b2af561e372f6c405f9a14d9a967692c2e54'},
    'MuseData': {'train': (524, 245202, 856543),
                 'valid': (135, 82755, 287893),
                 'test': (124, 64339, 211857),
                 'sha256': 'e12a6c26ee61e1d7c2af021b1f28515cf6e7131553f05dfc3ee6cb0f360d50cd'},
    'Nottingham': {'train': (694, 176561, 699403),
                   'valid': (173, 45513, 180192),
                   'test': (170, 44463, 177421),
                   'sha256': '9e01d35e541c87405fdc988371e5da5cda4f0f5f7047d69c804f0fe1005b7adc'},
    'Piano-midi.de': {'train': (87, 75911, 231089),
                      'valid': (12, 8540, 27623),
                      'test': (25, 19036, 56067),
                      'sha256': '841a934406e020bd7e6478de76ed33bb4b723e3a010cef9cc55ff9d9544eee7a'},
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


def data_files(name: str) -> list[str]:
  """The files ``load_music(name)`` reads, as paths in the data folder."""
  return [f'music/{file_name(name)}']


def piano_roll(piece) -> np.ndarray:
  """A piece (list of frames, each a tuple of MIDI notes) -> uint8 [T, 88].

  Raises ValueError (one line) for anything else: a piece or a frame that
  is not a sequence (a frame may be a tuple or a list), a note that is not
  an int (None, 60.5, '60', True: numpy would turn some of them into notes
  silently) or outside the piano's range.
  """
  try:
    lengths = np.fromiter(map(len, piece), np.int64, count=len(piece))
  except TypeError:
    raise ValueError(f'a piece must be a list of frames (tuples or lists of notes), found '
                     f'{type(piece).__name__} or a frame that is not a sequence') from None
  if set(map(type, itertools.chain.from_iterable(piece))) - {int}:
    frame, note = next((t, n) for t, f in enumerate(piece) for n in f if type(n) is not int)
    raise ValueError(f'note {note!r:.40} at frame {frame} is not a MIDI note number (an int '
                     f'in {LOWEST_NOTE}..{LOWEST_NOTE + NUM_KEYS - 1})')
  if any(n < LOWEST_NOTE or n >= LOWEST_NOTE + NUM_KEYS
         for n in itertools.chain.from_iterable(piece)):
    frame, note = next((t, n) for t, f in enumerate(piece) for n in f
                       if not LOWEST_NOTE <= n < LOWEST_NOTE + NUM_KEYS)
    raise ValueError(f'MIDI note {note:.3g} at frame {frame} is outside the piano range '
                     f'{LOWEST_NOTE}..{LOWEST_NOTE + NUM_KEYS - 1}')
  notes = np.fromiter(itertools.chain.from_iterable(piece), np.int64,
                      count=int(lengths.sum()))
  keys = notes - LOWEST_NOTE
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
  if not all(isinstance(raw[split], list) for split in SPLITS):
    raise ValueError('each split must be a list of pieces')
  out = {}
  for split in SPLITS:
    out[split] = []
    for i, piece in enumerate(raw[split]):
      try:
        out[split].append(piano_roll(piece))
      except ValueError as e:
        raise ValueError(f'{split} piece {i}: {e}') from None
  return out


def content_digest(rolls) -> str:
  """SHA-256 of a data set's content (every split's piano rolls, in order):
  what the pieces say, whatever pickle version holds them."""
  h = hashlib.sha256()
  for split in SPLITS:
    h.update(split.encode() + np.int64(len(rolls[split])).tobytes())
    for roll in rolls[split]:
      h.update(np.int64(len(roll)).tobytes() + np.packbits(roll, axis=None).tobytes())
  return h.hexdigest()


def fingerprint(pieces) -> tuple[int, int, int]:
  """(pieces, frames, note-ons) of a list of piano rolls [T, 88].

  note-ons counts active (frame, key) pairs: JSB train has 53824 over 13807
  frames, the mean polyphony of 3.9 the papers quote.
  """
  return (len(pieces), sum(len(p) for p in pieces),
          sum(int(np.count_nonzero(p)) for p in pieces))


def check_fingerprints(name: str, rolls, expected=None, digest=None) -> None:
  """Raises ValueError unless every split matches FINGERPRINTS[name], and the
  content digest too where ``expected`` has one (``digest``: it, computed)."""
  expected = expected or FINGERPRINTS[canonical_name(name)]
  for split in SPLITS:
    got = fingerprint(rolls[split])
    if got != tuple(expected[split]):
      raise ValueError(
          f'{name} {split}: content fingerprint (pieces, frames, note-ons) '
          f'is {got}, expected {tuple(expected[split])}')
  if 'sha256' in expected:
    got = digest or content_digest(rolls)
    if got != expected['sha256']:
      raise ValueError(f'{name}: content SHA-256 is {got}, expected {expected["sha256"]} '
                       '(some notes differ)')


def load_music(name: str, data_dir=None, fingerprints=None
               ) -> dict[str, list[np.ndarray]]:
  """Loads one data set as {'train'|'valid'|'test': [uint8 [frames, 88]]},
  checked against its fingerprints and content digest.

  Args:
    name: 'JSB Chorales', 'MuseData', 'Nottingham', 'Piano-midi.de' or an
      alias ('jsb', 'musedata', 'nottingham', 'piano').
    data_dir: data folder (config) > $RNNOPT_DATA > ~/.cache/rnnopt.
    fingerprints: {canonical name: {split: (pieces, frames, note-ons),
      'sha256': content digest}}; default FINGERPRINTS.

  Raises:
    DataFileMissing: when `music/<Name>.pickle` is absent.
    DataError: (one line, with what to do) when it is not a readable pickle
      of piano rolls, a split is empty, or its content is not the original's.
  """
  name = canonical_name(name)
  path = _files.require(data_files(name)[0], data_dir, 'music')
  fix = _files.how_to_fix('music', data_dir)
  try:
    raw = _files.safe_load(path)
  except OSError as e:     # the system's refusal, not the file's content
    raise _files.unreadable(path, e, 'music', data_dir) from None
  except Exception as e:   # truncated, not a pickle, or a global: whatever it is, not ours
    raise _files.DataError(f'{path} cannot be read as a pickle ({type(e).__name__}: '
                           f'{str(e)[:100]}); {fix}') from None
  try:
    rolls = piano_rolls(raw)
  except ValueError as e:
    raise _files.DataError(f'{path}: {e}; {fix}') from None
  for split in SPLITS:
    if not any(len(p) for p in rolls[split]):
      raise _files.DataError(f'{path}: the {split} split is empty (no frames); {fix}')
  expected = (fingerprints or FINGERPRINTS)[name]
  digest = (_files.cached_digest(path, 'music-content-sha256', lambda: content_digest(rolls))
            if 'sha256' in expected else None)
  try:
    check_fingerprints(name, rolls, expected, digest)
  except ValueError as e:
    raise _files.DataError(f'{path} is not the original file ({e}); {fix}') from None
  return rolls


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
