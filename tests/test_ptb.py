"""Tests for datasets.ptb."""

import numpy as np
import pytest

from datasets import _files
from datasets import ptb

FILES = sorted(ptb.MD5)


def level_files(level):
  """The three files of a level, as ``real_data`` (tests/conftest.py) takes them."""
  return [f'ptb/{ptb.file_name(level, split)}' for split in ptb.SPLITS]


# --- the word -> character rule ----------------------------------------------

def test_words_to_chars_by_hand():
  assert ptb.words_to_chars(' a bc \n <unk> N \n') == (
      'a _ b c \n < u n k > _ N \n ')


@pytest.mark.realdata
@pytest.mark.parametrize('split', ['valid', 'test', 'train'])
def test_words_to_chars_reproduces_the_char_files(split, real_data):
  folder = real_data(f'ptb/{ptb.file_name("word", split)}',
                     f'ptb/{ptb.file_name("char", split)}') / 'ptb'
  words = (folder / f'ptb.{split}.txt').read_text(encoding='utf-8')
  chars = (folder / f'ptb.char.{split}.txt').read_bytes()
  assert ptb.words_to_chars(words).encode('utf-8') == chars


# --- real files --------------------------------------------------------------

@pytest.mark.realdata
@pytest.mark.parametrize('name', FILES)
def test_real_md5(name, real_data):
  assert _files.md5sum(real_data(f'ptb/{name}') / 'ptb' / name) == ptb.MD5[name]


@pytest.mark.realdata
def test_real_word_level_sizes(real_data):
  splits, vocab = ptb.load_ptb('word', real_data(*level_files('word')))
  assert len(vocab) == 10_000 and {'<unk>', ptb.EOS, 'N'} <= set(vocab)
  sizes = {s: len(x) for s, x in splits.items()}
  assert sizes == {'train': 929_589, 'valid': 73_760, 'test': 82_430}
  lines = {s: int((x == vocab.index(ptb.EOS)).sum()) for s, x in
           splits.items()}
  assert {s: sizes[s] - lines[s] for s in sizes} == {
      'train': 887_521, 'valid': 70_390, 'test': 78_669}
  assert all(x.dtype == np.int32 for x in splits.values())
  assert vocab[0] == 'the'   # ids by decreasing frequency


@pytest.mark.realdata
def test_real_char_level_sizes(real_data):
  splits, vocab = ptb.load_ptb('char', real_data(*level_files('char')))
  assert len(vocab) == 50 and ptb.EOL in vocab and '_' in vocab
  eol = vocab.index(ptb.EOL)
  assert len(splits['train']) == 5_017_482
  assert int((splits['train'] == eol).sum()) == 42_068
  assert splits['train'].max() == 49 and splits['train'].dtype == np.int32


def test_char_loader_on_a_tiny_corpus(tmp_path):
  (tmp_path / 'ptb').mkdir()
  for split, words in [('train', ' ab a \n b \n'), ('valid', ' ba \n'),
                       ('test', ' a \n')]:
    (tmp_path / 'ptb' / f'ptb.char.{split}.txt').write_text(
        ptb.words_to_chars(words))
  splits, vocab = ptb.load_ptb('char', tmp_path, md5={})   # no known checksums
  assert vocab == ['\n', 'a', 'b', '_']   # counts 2, 2, 2, 1; ties by symbol
  np.testing.assert_array_equal(splits['train'], [1, 2, 3, 1, 0, 2, 0])
  np.testing.assert_array_equal(splits['valid'], [2, 1, 0])


# --- stream batching ---------------------------------------------------------

def test_stream_batches_by_hand():
  ids = np.arange(23)   # B=2 -> L=11, token 22 dropped
  x, y = ptb.stream_batches(ids, batch_size=2, window=3, shift=1)
  assert x.shape == y.shape == (3, 3, 2) and x.dtype == np.int32
  # window 0: stream 0 is 0.., stream 1 is 11..; time-major [window, B].
  np.testing.assert_array_equal(x[0], [[0, 11], [1, 12], [2, 13]])
  np.testing.assert_array_equal(y[0], [[1, 12], [2, 13], [3, 14]])
  np.testing.assert_array_equal(x[2], [[6, 17], [7, 18], [8, 19]])
  np.testing.assert_array_equal(y[2], [[7, 18], [8, 19], [9, 20]])


@pytest.mark.parametrize('shift', [1, 5])
@pytest.mark.parametrize('n, batch_size, window', [(103, 4, 5), (60, 3, 4),
                                                   (10, 2, 3)])
def test_stream_batches_invariants(n, batch_size, window, shift):
  ids = np.arange(n)
  x, y = ptb.stream_batches(ids, batch_size, window, shift)
  length = n // batch_size
  num_windows = (length - shift) // window
  assert x.shape == (num_windows, window, batch_size)
  np.testing.assert_array_equal(y, x + shift)   # ids are positions
  # Stream b, read window after window, is one contiguous slice from b*L.
  streams = x.transpose(2, 0, 1).reshape(batch_size, -1)
  for b in range(batch_size):
    np.testing.assert_array_equal(
        streams[b], np.arange(b * length, b * length + num_windows * window))
  # Lost: the tail (< B) and, per stream, < window inputs plus `shift`.
  lost_per_stream = length - num_windows * window
  assert shift <= lost_per_stream < window + shift


def test_stream_batches_too_short_is_empty():
  x, y = ptb.stream_batches(np.arange(5), batch_size=2, window=3)
  assert x.shape == y.shape == (0, 3, 2)


# --- class-factored softmax ----------------------------------------------------

def test_frequency_classes_on_zipf():
  vocab_size, num_classes = 5000, 30
  p = 1.0 / np.arange(1, vocab_size + 1) ** 0.6
  p /= p.sum()
  rng = np.random.default_rng(0)
  ids = rng.permutation(vocab_size)[rng.choice(vocab_size, 300_000, p=p)]
  cls, idx = ptb.frequency_classes(ids, vocab_size, num_classes)
  assert cls.shape == idx.shape == (vocab_size,) and cls.dtype == np.int32
  counts = np.bincount(ids, minlength=vocab_size)
  share = np.bincount(cls, weights=counts, minlength=num_classes) / len(ids)
  assert set(cls) == set(range(num_classes))
  biggest = counts.max() / len(ids)   # ~1.4%: a class may overshoot by one
  np.testing.assert_array_less(np.abs(share - 1 / num_classes), biggest)
  # (class, index) is a one-to-one position; frequencies fall within a class.
  assert len(set(zip(cls, idx))) == vocab_size
  for c in range(num_classes):
    words = np.flatnonzero(cls == c)
    np.testing.assert_array_equal(np.sort(idx[words]), np.arange(len(words)))
    in_order = words[np.argsort(idx[words])]
    assert np.all(np.diff(counts[in_order]) <= 0)
  # Classes are contiguous in frequency: every word of class c is at least as
  # frequent as every word of class c + 1.
  for c in range(num_classes - 1):
    assert counts[cls == c].min() >= counts[cls == c + 1].max()


def test_frequency_classes_by_hand():
  # counts: word 2 -> 5, word 0 -> 3, word 1 -> 2, word 3 -> 0 (unseen).
  ids = np.array([2] * 5 + [0] * 3 + [1] * 2)
  cls, idx = ptb.frequency_classes(ids, 4, num_classes=2)
  # Running shares by rank: 0.5, 0.8, 1.0, 1.0. Word 0 takes it past 1/2, so
  # it closes class 0 (rnnlm's rule) and class 1 starts with word 1.
  np.testing.assert_array_equal(cls, [0, 1, 0, 1])
  np.testing.assert_array_equal(idx, [1, 0, 0, 1])
