"""Tests for datasets.download and the data-folder helpers, against a local
HTTP server (127.0.0.1, ephemeral port) serving files made in tmp_path."""

import errno
import hashlib
import http.server
import io
import os
import pathlib
import pickle
import re
import tarfile
import threading
import time
import urllib.parse

import numpy as np
import pytest

from datasets import _files
from datasets import download
from datasets import music
from datasets import ptb


class _Handler(http.server.BaseHTTPRequestHandler):
  """GET with optional Range support and scripted mid-file disconnects."""

  def do_GET(self):
    srv = self.server
    path = urllib.parse.unquote(self.path)
    srv.log.append((path, self.headers.get('Range')))
    body = srv.files.get(path)
    if body is None:
      self.send_error(404)
      return
    start = 0
    if self.headers.get('Range') and srv.ranges:
      start = int(re.fullmatch(r'bytes=(\d+)-',
                               self.headers['Range']).group(1))
      if start >= len(body):
        self.send_error(416)
        return
      self.send_response(206)
      self.send_header('Content-Range',
                       f'bytes {start}-{len(body) - 1}/{len(body)}')
    else:
      self.send_response(200)
    payload = body[start:]
    self.send_header('Content-Length', str(len(payload)))
    self.end_headers()
    if srv.drops.get(path, 0) > 0:   # announce everything, send half, hang up
      srv.drops[path] -= 1
      self.wfile.write(payload[:len(payload) // 2])
      self.close_connection = True
      return
    self.wfile.write(payload)

  def log_message(self, *args):
    pass


@pytest.fixture
def server():
  srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _Handler)
  srv.files, srv.log, srv.drops, srv.ranges = {}, [], {}, True
  srv.url = f'http://127.0.0.1:{srv.server_address[1]}'
  thread = threading.Thread(target=srv.serve_forever, args=(0.02,),
                            daemon=True)
  thread.start()
  yield srv
  srv.shutdown()
  srv.server_close()


QUIET = dict(progress=False, backoff_s=0.0, timeout_s=5.0)
BODY = bytes(np.random.default_rng(0).integers(0, 256, 300_000, np.uint8))
MD5 = hashlib.md5(BODY).hexdigest()


def _md5_check(path):
  if _files.md5sum(path) != MD5:
    raise ValueError('md5 mismatch')


def _leftovers(folder):
  return sorted(p.name for p in pathlib.Path(folder).iterdir())


# --- data folder and missing files -------------------------------------------

def test_data_dir_precedence(monkeypatch, tmp_path):
  monkeypatch.setenv('HOME', str(tmp_path / 'home'))
  monkeypatch.delenv(_files.ENV_VAR, raising=False)
  assert _files.resolve_data_dir() == tmp_path / 'home/.cache/rnnopt'
  assert _files.resolve_data_dir('') == tmp_path / 'home/.cache/rnnopt'
  monkeypatch.setenv(_files.ENV_VAR, str(tmp_path / 'env'))
  assert _files.resolve_data_dir() == tmp_path / 'env'
  assert _files.resolve_data_dir(tmp_path / 'arg') == tmp_path / 'arg'


def test_the_tests_find_the_real_corpora_one_way(monkeypatch, tmp_path):
  """The ``real_data`` lookup (tests/conftest.py): unset, the first of
  ../shared/data and ~/.cache/rnnopt holding every file the test reads, else
  a skip; $RNNOPT_DATA set, that folder, and a file it lacks fails."""
  from tests import conftest
  shared, cache = tmp_path / 'shared', tmp_path / 'home/.cache/rnnopt'
  monkeypatch.setattr(conftest, 'SHARED_DATA', shared)
  monkeypatch.setenv('HOME', str(tmp_path / 'home'))
  monkeypatch.setenv(_files.ENV_VAR, '')             # empty: unset, as for the loaders
  ptb_valid, jsb = 'ptb/ptb.valid.txt', 'music/JSB Chorales.pickle'

  def lookup(*files):
    """The folder found, or the skip or failure raised (both outside Exception)."""
    try:
      return conftest.find_real_data(files)
    except (pytest.skip.Exception, pytest.fail.Exception) as e:
      return e

  def touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('')

  skip = lookup(ptb_valid)
  assert type(skip) is pytest.skip.Exception
  assert f'{shared} lacks {ptb_valid}; {cache} lacks {ptb_valid}' in str(skip)
  touch(cache / ptb_valid)
  assert lookup(ptb_valid) == cache
  touch(shared / ptb_valid)
  assert lookup(ptb_valid) == shared           # ../shared/data first
  touch(cache / jsb)
  assert lookup(ptb_valid, jsb) == cache       # the first that holds both
  skip = lookup(ptb_valid, 'ptb/ptb.test.txt', 'ptb/ptb.train.txt')
  assert type(skip) is pytest.skip.Exception and 'lacks ptb/ptb.test.txt and 1 more' in str(skip)
  for folder, files, lacking in ((shared, (ptb_valid, jsb), jsb),
                                 (tmp_path / 'typo', (ptb_valid,), ptb_valid)):
    monkeypatch.setenv(_files.ENV_VAR, str(folder))
    fail = lookup(*files)
    assert type(fail) is pytest.fail.Exception, fail
    assert str(fail).startswith(f'$RNNOPT_DATA={folder} lacks {lacking}: point it at')
  monkeypatch.setenv(_files.ENV_VAR, str(cache))
  assert lookup(ptb_valid, jsb) == cache


@pytest.mark.parametrize('load, relpath, corpus', [
    (lambda d: music.load_music('jsb', d), 'music/JSB Chorales.pickle',
     'music'),
    (lambda d: ptb.load_ptb('word', d), 'ptb/ptb.train.txt', 'ptb'),
])
def test_missing_file_error_says_what_where_and_how(tmp_path, load, relpath,
                                                    corpus):
  with pytest.raises(_files.DataFileMissing) as info:
    load(str(tmp_path))
  message = str(info.value)
  assert isinstance(info.value, FileNotFoundError)
  assert '\n' not in message
  assert str(tmp_path / relpath) in message
  assert f'python -m datasets.download {corpus} --data_dir {tmp_path}' in (
      message)


def _refuse(path_part):
  """An os.stat / open stand-in that says EACCES for paths containing ``path_part``."""
  def check(path, *args, real, **kwargs):
    if path_part in os.fspath(path):
      raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(path))
    return real(path, *args, **kwargs)
  return check


@pytest.mark.parametrize('where', ['folder', 'ptb file', 'music file'])
def test_a_file_we_may_not_read_is_one_line_saying_so(tmp_path, monkeypatch, where):
  """EACCES on the way to a file, or on the file, is a DataError naming the refusal
  (not a traceback from deep inside pathlib or hashlib, nor "not a pickle").
  The tests run as root, so the refusal is simulated."""
  from tests.test_faults import TINY_MUSIC, write_music
  monkeypatch.setattr(_files, 'CACHE_FILE', str(tmp_path / 'cache.json'))
  (tmp_path / 'ptb').mkdir()
  for split in ptb.SPLITS:
    (tmp_path / 'ptb' / ptb.file_name('word', split)).write_text(' a b \n')
  write_music(tmp_path, TINY_MUSIC)
  if where == 'folder':
    real = os.stat
    monkeypatch.setattr(_files.os, 'stat', lambda p, *a, **k: _refuse('ptb')(p, *a, real=real, **k))
    load, path = lambda: ptb.load_ptb('word', tmp_path), tmp_path / 'ptb' / 'ptb.train.txt'
  elif where == 'ptb file':
    monkeypatch.setattr(_files, 'md5sum', lambda p: _refuse('ptb')(p, real=_files.md5sum))
    load, path = lambda: ptb.load_ptb('word', tmp_path), tmp_path / 'ptb' / 'ptb.train.txt'
  else:
    import builtins
    real = builtins.open
    monkeypatch.setattr(builtins, 'open', lambda p, *a, **k: _refuse('.pickle')(p, *a, real=real, **k))
    load, path = lambda: music.load_music('jsb', tmp_path), tmp_path / 'music' / 'JSB Chorales.pickle'
  with pytest.raises(_files.DataError) as info:
    load()
  message = str(info.value)
  assert '\n' not in message
  assert f'{path} cannot be read (Permission denied): check its permissions' in message
  assert 'as a pickle' not in message


def test_a_same_size_rewrite_with_its_old_mtime_is_checked_again(tmp_path, monkeypatch):
  """The digest cache must not vouch for new content that kept the size and the
  modification time (``cp -p``, ``touch -r``): a transposed note is refused."""
  from tests.test_faults import TINY_MUSIC, write_music
  monkeypatch.setattr(_files, 'CACHE_FILE', str(tmp_path / 'cache.json'))
  path = write_music(tmp_path, TINY_MUSIC)
  rolls = music.piano_rolls(TINY_MUSIC)
  prints = {s: music.fingerprint(rolls[s]) for s in music.SPLITS}
  prints['sha256'] = music.content_digest(rolls)
  music.load_music('jsb', tmp_path, {'JSB Chorales': prints})      # cached as good
  before = os.stat(path)
  # Before Linux 6.13 file times advance once a kernel tick (1-10 ms): wait one out,
  # so that the rewrite's change time differs, as it would for any rewrite by hand.
  while time.time_ns() < before.st_ctime_ns + 20_000_000:
    time.sleep(0.005)
  changed = {k: [list(p) for p in v] for k, v in TINY_MUSIC.items()}
  changed['train'][0][0] = (61, 64)             # one note up: same counts, same size
  changed_bytes = pickle.dumps(changed, 2)
  assert len(changed_bytes) == before.st_size
  path.write_bytes(changed_bytes)
  os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
  after = os.stat(path)
  assert after.st_mtime_ns == before.st_mtime_ns and after.st_size == before.st_size
  assert after.st_ctime_ns != before.st_ctime_ns          # the precondition the cache relies on
  with pytest.raises(_files.DataError, match='content SHA-256'):
    music.load_music('jsb', tmp_path, {'JSB Chorales': prints})


# --- fetch -------------------------------------------------------------------

def test_good_file_lands_verified(server, tmp_path):
  server.files['/f.bin'] = BODY
  dest = download.fetch(server.url + '/f.bin', tmp_path / 'f.bin',
                        _md5_check, **QUIET)
  assert dest.read_bytes() == BODY
  assert _leftovers(tmp_path) == ['f.bin']


@pytest.mark.parametrize('bad', [BODY[:1000], BODY[:-1] + b'\0'],
                         ids=['truncated', 'corrupted'])
def test_bad_file_raises_and_leaves_nothing(server, tmp_path, bad):
  server.files['/f.bin'] = bad
  with pytest.raises(download.VerificationError):
    download.fetch(server.url + '/f.bin', tmp_path / 'f.bin', _md5_check,
                   **QUIET)
  assert _leftovers(tmp_path) == []


def test_resumes_with_range_after_dropped_connection(server, tmp_path):
  server.files['/f.bin'] = BODY
  server.drops['/f.bin'] = 1
  dest = download.fetch(server.url + '/f.bin', tmp_path / 'f.bin',
                        _md5_check, retries=2, **QUIET)
  assert dest.read_bytes() == BODY
  assert server.log == [('/f.bin', None),
                        ('/f.bin', f'bytes={len(BODY) // 2}-')]


def test_restarts_when_server_ignores_range(server, tmp_path):
  server.files['/f.bin'] = BODY
  server.drops['/f.bin'] = 1
  server.ranges = False
  dest = download.fetch(server.url + '/f.bin', tmp_path / 'f.bin',
                        _md5_check, retries=2, **QUIET)
  assert dest.read_bytes() == BODY


def test_gives_up_keeps_partial_then_resumes_on_rerun(server, tmp_path):
  server.files['/f.bin'] = BODY
  server.drops['/f.bin'] = 3
  with pytest.raises(download.DownloadError, match='giving up'):
    download.fetch(server.url + '/f.bin', tmp_path / 'f.bin', _md5_check,
                   retries=2, **QUIET)
  part = tmp_path / 'f.bin.part'
  assert _leftovers(tmp_path) == ['f.bin.part']   # never at the final path
  have = part.stat().st_size
  assert 0 < have < len(BODY) and part.read_bytes() == BODY[:have]
  download.fetch(server.url + '/f.bin', tmp_path / 'f.bin', _md5_check,
                 **QUIET)
  assert server.log[-1] == ('/f.bin', f'bytes={have}-')
  assert _leftovers(tmp_path) == ['f.bin']
  assert (tmp_path / 'f.bin').read_bytes() == BODY


def test_oversized_partial_is_discarded(server, tmp_path):
  server.files['/f.bin'] = BODY
  (tmp_path / 'f.bin.part').write_bytes(BODY + b'junk')   # server says 416
  download.fetch(server.url + '/f.bin', tmp_path / 'f.bin', _md5_check,
                 retries=1, **QUIET)
  assert server.log == [('/f.bin', f'bytes={len(BODY) + 4}-'),
                        ('/f.bin', None)]
  assert _leftovers(tmp_path) == ['f.bin']


def test_http_error_is_not_retried(server, tmp_path):
  with pytest.raises(download.DownloadError, match='404'):
    download.fetch(server.url + '/nope', tmp_path / 'f.bin', retries=3,
                   **QUIET)
  assert len(server.log) == 1
  assert _leftovers(tmp_path) == []


def test_a_full_disk_is_not_retried_as_a_network_error(server, tmp_path, monkeypatch):
  """Writing the data folder failed (no space): one attempt, and main says
  it is the folder, not the network."""
  server.files['/f.bin'] = BODY
  calls = []

  def full(url, part, timeout_s, progress):
    calls.append(url)
    raise OSError(errno.ENOSPC, 'No space left on device')
  monkeypatch.setattr(download, '_download', full)
  with pytest.raises(OSError, match='No space left'):
    download.fetch(server.url + '/f.bin', tmp_path / 'f.bin', retries=3, **QUIET)
  assert len(calls) == 1
  monkeypatch.setattr(download, 'download_music', lambda data_dir: full('u', None, 0, False))
  with pytest.raises(SystemExit, match='cannot write the data folder .*No space left'):
    download.main(['music', '--data_dir', str(tmp_path)])


def test_ctrl_c_during_a_download_says_it_resumes(tmp_path, monkeypatch):
  def interrupted(data_dir):
    raise KeyboardInterrupt
  monkeypatch.setattr(download, 'download_music', interrupted)
  with pytest.raises(SystemExit, match='interrupted: what was downloaded is kept'):
    download.main(['music', '--data_dir', str(tmp_path)])


# --- music -------------------------------------------------------------------

def _tiny_music():
  raw = {'train': [[(60, 64), (), (21, 108)], [(50,)]],
         'valid': [[(70,)] * 4], 'test': [[(40, 41, 42)]]}
  prints = {'train': (2, 4, 5), 'valid': (1, 4, 4), 'test': (1, 1, 3)}
  return raw, prints


@pytest.mark.parametrize('protocol', [0, 2])
def test_download_music(server, tmp_path, protocol):
  raw, prints = _tiny_music()
  server.files['/m/JSB Chorales.pickle'] = pickle.dumps(raw, protocol)
  download.download_music(tmp_path, ['jsb'], base_url=server.url + '/m/',
                          fingerprints={'JSB Chorales': prints}, **QUIET)
  assert server.log == [('/m/JSB Chorales.pickle', None)]
  rolls = music.load_music('JSB Chorales', tmp_path, {'JSB Chorales': prints})
  assert music.fingerprint(rolls['train']) == prints['train']
  # Present and verified: no second request.
  download.download_music(tmp_path, ['jsb'], base_url=server.url + '/m/',
                          fingerprints={'JSB Chorales': prints}, **QUIET)
  assert len(server.log) == 1


@pytest.mark.parametrize('case', ['truncated', 'wrong content', 'global'])
def test_bad_music_pickle_is_not_installed(server, tmp_path, case):
  raw, prints = _tiny_music()
  good = pickle.dumps(raw, 2)
  server.files['/m/JSB Chorales.pickle'] = {
      'truncated': good[:len(good) // 2],
      'wrong content': pickle.dumps({**raw, 'test': []}, 2),
      'global': pickle.dumps({**raw, 'test': [np.zeros(3)]}, 2),
  }[case]
  with pytest.raises(download.VerificationError):
    download.download_music(tmp_path, ['jsb'], base_url=server.url + '/m',
                            fingerprints={'JSB Chorales': prints}, **QUIET)
  assert _leftovers(tmp_path / 'music') == []


# --- PTB ---------------------------------------------------------------------

WORDS = {
    'train': ' the cat sat \n on the mat \n the <unk> sat N \n',
    'valid': ' the mat sat \n',
    'test': ' on the cat \n N \n',
}


def _tarball(tmp_path, with_char_train=False, extra=()):
  files = {f'ptb.{s}.txt': t for s, t in WORDS.items()}
  splits = ('train', 'valid', 'test') if with_char_train else ('valid',
                                                               'test')
  files.update({f'ptb.char.{s}.txt': ptb.words_to_chars(WORDS[s])
                for s in splits})
  buf = io.BytesIO()
  with tarfile.open(fileobj=buf, mode='w:gz') as tar:
    for name, text in list(files.items()) + list(extra):
      data = text.encode()
      member = tarfile.TarInfo(
          name if name.startswith('.') else f'./simple-examples/data/{name}')
      member.size = len(data)
      tar.addfile(member, io.BytesIO(data))
  expected = {name: hashlib.md5(ptb.words_to_chars(WORDS[s]).encode()
                                if 'char' in name else WORDS[s].encode()
                                ).hexdigest()
              for s in WORDS for name in (f'ptb.{s}.txt',
                                          f'ptb.char.{s}.txt')}
  return buf.getvalue(), expected


@pytest.mark.parametrize('with_char_train', [False, True])
def test_download_ptb_extracts_only_ptb_files(server, tmp_path,
                                              with_char_train):
  extra = [('./simple-examples/models/evil.txt', 'x'),
           ('./simple-examples/data/README', 'x')]
  tgz, md5 = _tarball(tmp_path, with_char_train, extra)
  server.files['/simple-examples.tgz'] = tgz
  download.download_ptb(tmp_path, url=server.url + '/simple-examples.tgz',
                        md5=md5, **QUIET)
  assert _leftovers(tmp_path / 'ptb') == sorted(md5)
  assert _leftovers(tmp_path) == ['ptb']
  splits, vocab = ptb.load_ptb('word', tmp_path, md5=md5)
  assert vocab[:2] == ['<eos>', 'the']   # 3 each; ties alphabetical
  assert len(splits['train']) == 13


def test_truncated_ptb_tarball_installs_nothing(server, tmp_path):
  tgz, md5 = _tarball(tmp_path)
  server.files['/simple-examples.tgz'] = tgz[:len(tgz) // 2]
  with pytest.raises(download.VerificationError):
    download.download_ptb(tmp_path, url=server.url + '/simple-examples.tgz',
                          md5=md5, **QUIET)
  assert _leftovers(tmp_path / 'ptb') == []


def test_ptb_member_with_wrong_md5_is_not_installed(server, tmp_path):
  tgz, md5 = _tarball(tmp_path)
  md5['ptb.test.txt'] = '0' * 32
  server.files['/simple-examples.tgz'] = tgz
  with pytest.raises(download.VerificationError, match='ptb.test.txt'):
    download.download_ptb(tmp_path, url=server.url + '/simple-examples.tgz',
                          md5=md5, **QUIET)
  assert 'ptb.test.txt' not in _leftovers(tmp_path / 'ptb')
  assert not any(n.endswith(('.part', '.tgz'))
                 for n in _leftovers(tmp_path / 'ptb'))


# --- end to end with the real files (default fingerprints and MD5s) ----------

@pytest.mark.realdata
def test_real_music_file_verifies_with_readme_fingerprints(server, tmp_path, real_data):
  real = real_data('music/JSB Chorales.pickle') / 'music/JSB Chorales.pickle'
  server.files['/~boulanni/JSB Chorales.pickle'] = real.read_bytes()
  download.download_music(tmp_path, ['jsb'],
                          base_url=server.url + '/~boulanni', **QUIET)
  assert (tmp_path / 'music/JSB Chorales.pickle').read_bytes() == (
      real.read_bytes())


@pytest.mark.realdata
def test_real_ptb_tarball_without_char_train_rebuilds_it(server, tmp_path, real_data):
  real = real_data(*(f'ptb/{name}' for name in ptb.MD5)) / 'ptb'
  buf = io.BytesIO()
  with tarfile.open(fileobj=buf, mode='w:gz', compresslevel=1) as tar:
    for name in ptb.MD5:
      if name != 'ptb.char.train.txt':
        tar.add(real / name, f'./simple-examples/data/{name}')
  server.files['/simple-examples.tgz'] = buf.getvalue()
  download.download_ptb(tmp_path, url=server.url + '/simple-examples.tgz',
                        **QUIET)
  assert _leftovers(tmp_path / 'ptb') == sorted(ptb.MD5)
  assert ((tmp_path / 'ptb/ptb.char.train.txt').read_bytes()
          == (real / 'ptb.char.train.txt').read_bytes())
