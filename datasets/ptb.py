"""Penn Treebank with Mikolov's preprocessing (simple-examples.tgz).

Word level: 10k symbols, 9,999 words (`<unk>` included, `N` for numbers) plus
`<eos>` at each line end: 929,589 / 73,760 / 82,430 tokens. Character level:
`ptb.char.*.txt` holds each sentence's characters separated by spaces with
`_` between words; 49 symbols plus an end-of-line symbol (`'\\n'`) = 50, and
5,017,482 training symbols (the "5017k characters" of Pascanu et al. 2013
and Bengio et al. 2013).

Ids are assigned by decreasing training frequency (ties alphabetical), as in
Mikolov's rnnlm, so `frequency_classes` can cut the vocabulary in order.
"""

from __future__ import annotations

import collections

import numpy as np

from datasets import _files

SPLITS = ('train', 'valid', 'test')
EOS = '<eos>'   # word level: end of sentence
EOL = '\n'      # character level: end of line

# MD5 of the files (shared/data/README.md): word level and char valid/test as
# distributed; ptb.char.train.txt as rebuilt by `words_to_chars`.
MD5 = {
    'ptb.train.txt': 'f26c4b92c5fdc7b3f8c7cdcb991d8420',
    'ptb.valid.txt': 'aa0affc06ff7c36e977d7cd49e3839bf',
    'ptb.test.txt': '8b80168b89c18661a38ef683c0dc3721',
    'ptb.char.train.txt': '874909f99060142f6b88cc74c34baaa2',
    'ptb.char.valid.txt': '9e0fe5bec2a8bf43fd686dc23d5ab8bb',
    'ptb.char.test.txt': '1f9a2d1afe00f76e8bfbe09a65439681',
}


def file_name(level: str, split: str) -> str:
  if level not in ('word', 'char') or split not in SPLITS:
    raise ValueError(f'bad PTB level/split {level!r}/{split!r}')
  return f'ptb.{split}.txt' if level == 'word' else f'ptb.char.{split}.txt'


def data_files(level: str) -> list[str]:
  """The files ``load_ptb(level)`` reads, as paths in the data folder."""
  return [f'ptb/{file_name(level, split)}' for split in SPLITS]


def words_to_chars(text: str) -> str:
  """The word -> character file rule of the distribution, byte for byte.

  Per line, words are joined with `_` and the line ends with a newline; then
  every character of the whole text, newlines included, is followed by one
  space. ' a b \\n cd \\n' -> 'a _ b \\n c d \\n '. It turns ptb.valid.txt and
  ptb.test.txt into ptb.char.valid.txt and ptb.char.test.txt exactly.
  """
  stream = ''.join('_'.join(line.split()) + '\n'
                   for line in text.splitlines())
  return ' '.join(stream) + ' ' if stream else ''


def _read_symbols(path, level: str) -> list[str]:
  """The token sequence of one file, with EOS/EOL at each line end."""
  text = path.read_text(encoding='utf-8')
  if level == 'word':
    return text.replace('\n', f' {EOS} ').split()
  # 'c h a r s \n n e x t ...': a symbol at even offsets, a space at odd ones.
  if text[1::2].strip(' '):
    raise ValueError(f'{path}: not in the "c h a r s" format (a space after '
                     'every symbol)')
  return list(text[0::2])


def load_ptb(level: str = 'char', data_dir=None, md5=None
             ) -> tuple[dict[str, np.ndarray], list[str]]:
  """Loads PTB as int32 id streams, every file checked against its MD5.

  Args:
    level: 'char' (50 symbols) or 'word' (10,000 symbols incl. <unk>, <eos>).
    data_dir: data folder (config) > $RNNOPT_DATA > ~/.cache/rnnopt.
    md5: {file name: md5}; default MD5 (a file it does not name is not checked).

  Returns:
    ({'train'|'valid'|'test': int32 [num_tokens]}, vocab list of str), where
    vocab[i] is the symbol of id i, ordered by decreasing training frequency.

  Raises:
    DataFileMissing: when a `ptb/` file is absent.
    DataError: (one line, with what to do) when a file is not the original,
      not UTF-8 text, or empty.
    ValueError: on a symbol not seen in training (none in the real data).
  """
  md5 = MD5 if md5 is None else md5
  symbols = {}
  for split, relpath in zip(SPLITS, data_files(level)):
    path = _files.require(relpath, data_dir, 'ptb')
    if path.name in md5:
      _files.check_md5(path, md5[path.name], 'ptb', data_dir)
    try:
      symbols[split] = _read_symbols(path, level)
    except (UnicodeDecodeError, ValueError) as e:
      raise _files.DataError(f'{path}: {str(e)[:120]}; {_files.how_to_fix("ptb", data_dir)}'
                             ) from None
    except OSError as e:
      raise _files.unreadable(path, e, 'ptb', data_dir) from None
    if not symbols[split]:
      raise _files.DataError(f'{path} is empty; {_files.how_to_fix("ptb", data_dir)}')
  counts = collections.Counter(symbols['train'])
  vocab = sorted(counts, key=lambda s: (-counts[s], s))
  index = {s: i for i, s in enumerate(vocab)}
  splits = {}
  for split, seq in symbols.items():
    try:
      splits[split] = np.fromiter(map(index.__getitem__, seq), np.int32,
                                  count=len(seq))
    except KeyError as e:
      raise ValueError(f'PTB {level} {split}: symbol {e.args[0]!r} is not in '
                       'the training vocabulary') from None
  return splits, vocab


def stream_batches(ids: np.ndarray, batch_size: int, window: int,
                   shift: int = 1) -> tuple[np.ndarray, np.ndarray]:
  """Cuts a token stream into B parallel streams of windows (Mikolov-style).

  Stream b is the b-th contiguous slice ids[b*L:(b+1)*L], L = len(ids) // B;
  window w of stream b continues where window w-1 ended, so the trainer
  carries the recurrent state from window to window (truncated BPTT with
  `window` steps) and resets it only at the start of an epoch.

    inputs[w, t, b]  = ids[b*L + w*window + t]
    targets[w, t, b] = ids[b*L + w*window + t + shift]

  shift=1 is next-symbol prediction; shift=5 is Pascanu et al.'s (2013)
  variant predicting the 5th character ahead.

  Dropped (the documented remainder): the last len(ids) - B*L tokens (< B),
  and per stream the inputs after the last full window (< window) together
  with the final `shift` tokens, which only serve as targets.

  Returns:
    (inputs, targets), int32 [num_windows, window, B] each, time-major
    within a window; num_windows = (L - shift) // window.
  """
  if batch_size < 1 or window < 1 or shift < 1:
    raise ValueError('batch_size, window and shift must be positive')
  ids = np.asarray(ids, np.int32)
  length = len(ids) // batch_size
  num_windows = max(0, (length - shift) // window)
  used = num_windows * window
  streams = ids[:batch_size * length].reshape(batch_size, length)   # [B, L]

  def cut(offset):
    x = streams[:, offset:offset + used]                          # [B, used]
    return np.ascontiguousarray(
        x.reshape(batch_size, num_windows, window).transpose(1, 2, 0))

  return cut(0), cut(shift)


def frequency_classes(train_ids: np.ndarray, vocab_size: int,
                      num_classes: int = 30) -> tuple[np.ndarray, np.ndarray]:
  """Frequency-binned word classes for a class-factored softmax.

  Mikolov et al. (2011, "Extensions of recurrent neural network language
  model") and rnnlm: walk the words by decreasing training count, keep a
  running share of tokens, and move to the next class once the share passes
  (c + 1) / num_classes. Each class then holds about 1/num_classes of the
  training tokens; a word more frequent than that gets a class of its own,
  and classes are never empty while words remain.
  p(w) = p(class(w)) * p(w | class(w)).

  Args:
    train_ids: int [N] training token ids.
    vocab_size: V; ids never seen in training go to the last class used.
    num_classes: C.

  Returns:
    (class_of_word int32 [V], index_in_class int32 [V]); index_in_class
    counts from 0 within each class in order of decreasing frequency, so
    `table[class_of_word, index_in_class] = arange(V)` fills a [C, max size]
    lookup of each class's words.
  """
  counts = np.bincount(np.asarray(train_ids), minlength=vocab_size)
  if len(counts) > vocab_size:
    raise ValueError(f'an id is >= vocab_size={vocab_size}')
  order = np.argsort(-counts, kind='stable')
  share = np.cumsum(counts[order]) / max(counts.sum(), 1)
  class_of_word = np.zeros(vocab_size, np.int32)
  index_in_class = np.zeros(vocab_size, np.int32)
  c = position = 0
  for rank, word in enumerate(order):
    class_of_word[word], index_in_class[word] = c, position
    position += 1
    if share[rank] > (c + 1) / num_classes and c < num_classes - 1:
      c, position = c + 1, 0
  return class_of_word, index_in_class
