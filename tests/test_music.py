"""Tests for datasets.music and the safe unpickler."""

import collections
import pathlib
import pickle

import numpy as np
import pytest

from datasets import _files
from datasets import music


# --- safe unpickler ----------------------------------------------------------

def write_marker(path):
  """Stands in for os.system: proves a payload ran by creating a file."""
  pathlib.Path(path).write_text('payload ran')
  return 0


class _Payload:
  def __init__(self, marker):
    self.marker = marker

  def __reduce__(self):
    return write_marker, (str(self.marker),)


@pytest.mark.parametrize('protocol', [0, 2, pickle.HIGHEST_PROTOCOL])
def test_safe_unpickler_refuses_code(tmp_path, protocol):
  evil = pickle.dumps({'train': [_Payload(tmp_path / 'marker')]}, protocol)
  # Control: the payload is live; plain pickle would run it.
  pickle.loads(pickle.dumps(_Payload(tmp_path / 'control'), protocol))
  assert (tmp_path / 'control').exists()
  with pytest.raises(pickle.UnpicklingError, match=r'refusing.*write_marker'):
    _files.safe_loads(evil)
  (tmp_path / 'evil.pickle').write_bytes(evil)
  with pytest.raises(pickle.UnpicklingError, match='refusing'):
    _files.safe_load(tmp_path / 'evil.pickle')
  assert not (tmp_path / 'marker').exists()


@pytest.mark.parametrize('protocol', [0, 2, pickle.HIGHEST_PROTOCOL])
def test_safe_unpickler_loads_plain_data(protocol):
  data = {'train': [[(60, 64), ()], [(21,)]], 'valid': [], 'test': [[()]]}
  assert _files.safe_loads(pickle.dumps(data, protocol)) == data


# --- piano rolls and fingerprints --------------------------------------------

def test_piano_roll():
  roll = music.piano_roll([(21, 108), (), (60,)])
  expected = np.zeros((3, 88), np.uint8)
  expected[0, [0, 87]] = 1
  expected[2, 39] = 1
  np.testing.assert_array_equal(roll, expected)
  assert music.fingerprint([roll, roll[:1]]) == (2, 4, 5)


@pytest.mark.parametrize('note', [20, 109])
def test_note_outside_piano_is_an_error(note):
  with pytest.raises(ValueError, match=f'MIDI note {note} at frame 1'):
    music.piano_roll([(60,), (61, note)])


def test_names_and_aliases():
  assert music.canonical_name('jsb') == 'JSB Chorales'
  assert music.canonical_name('piano') == 'Piano-midi.de'
  assert music.canonical_name('nottingham') == 'Nottingham'
  assert music.file_name('MuseData') == 'MuseData.pickle'
  with pytest.raises(ValueError, match='unknown music data set'):
    music.canonical_name('bach')


@pytest.mark.realdata
@pytest.mark.parametrize('name', music.NAMES)
def test_real_fingerprints(name, real_data):
  rolls = music.load_music(name, real_data(f'music/{music.file_name(name)}'))
  for split in music.SPLITS:
    assert music.fingerprint(rolls[split]) == music.FINGERPRINTS[name][split]
    assert all(r.dtype == np.uint8 and r.shape[1] == 88 for r in rolls[split])
  if name == 'JSB Chorales':
    _, frames, notes = music.fingerprint(rolls['train'])
    assert round(notes / frames, 2) == 3.90   # the papers' "3.9"
    batches = music.bptt_batches(rolls['train'], 16, 100)
    assert batches.mask.sum() == frames - len(rolls['train'])


# --- truncated-BPTT batches ----------------------------------------------------

def _pieces(lengths, seed=0):
  rng = np.random.default_rng(seed)
  return [(rng.random((n, 88)) < 0.05).astype(np.uint8) for n in lengths]


def _unpack(batches):
  """Rebuilds each batch's B time lines [T, B, 88] from its chunks."""
  starts = list(np.flatnonzero(batches.reset)) + [len(batches.reset)]
  for a, b in zip(starts[:-1], starts[1:]):
    def cat(x):
      return x[a:b].reshape((-1,) + x.shape[2:])
    yield cat(batches.inputs), cat(batches.targets), cat(batches.mask)


LENGTHS = [1, 5, 7, 7, 8, 12, 16, 23, 3, 40, 9]   # 1: no target at all


@pytest.mark.parametrize('sort', [True, False])
def test_bptt_batches_keep_every_frame_once(sort):
  pieces = _pieces(LENGTHS)
  batch_size, chunk = 3, 4
  out = music.bptt_batches(pieces, batch_size, chunk, sort_by_length=sort)
  n = len(out.reset)
  assert out.inputs.shape == out.targets.shape == (n, chunk, batch_size, 88)
  assert out.mask.shape == (n, chunk, batch_size)
  assert out.reset[0] and out.reset.sum() == -(-len(pieces) // batch_size)
  assert out.mask.sum() == sum(n - 1 for n in LENGTHS)
  found = collections.Counter()
  for x, y, m in _unpack(out):
    assert len(x) % chunk == 0
    for b in range(batch_size):
      length = int(m[:, b].sum()) + 1
      if not x[:, b].any() and length == 1:
        continue   # an empty column (or an all-silent 1-frame piece)
      np.testing.assert_array_equal(m[:length - 1, b], 1)
      # Targets are the next frames of the same piece, across chunk ends.
      np.testing.assert_array_equal(y[:length - 1, b], x[1:length, b])
      assert not x[length:, b].any() and not y[length - 1:, b].any()
      found[x[:length, b].tobytes()] += 1
    # Each batch is as short as its longest piece allows.
    assert len(x) == -(-(int(m.sum(0).max()) + 1) // chunk) * chunk
  assert found == collections.Counter(p.tobytes() for p in pieces
                                      if p.any() or len(p) > 1)
  slots = out.inputs.shape[0] * chunk * batch_size
  assert out.padding_ratio == pytest.approx(
      (slots - sum(LENGTHS)) / sum(LENGTHS))


def test_bucketing_reduces_padding():
  rng = np.random.default_rng(1)
  lengths = rng.lognormal(5, 0.8, size=200).astype(int) + 1
  pieces = [np.zeros((n, 88), np.uint8) for n in lengths]
  sorted_ratio = music.bptt_batches(pieces, 8, 50).padding_ratio
  random_ratio = music.bptt_batches(pieces, 8, 50,
                                    sort_by_length=False).padding_ratio
  assert sorted_ratio < 0.5 * random_ratio
