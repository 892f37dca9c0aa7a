r"""Downloads the real corpora from their original addresses, verified.

  python -m datasets.download [music|ptb|all] --data_dir DIR

Without --data_dir: $RNNOPT_DATA, else ~/.cache/rnnopt. Every file is written
to `<final name>.part` in its own folder, verified, then `os.replace`d into
place, so a half-written or unverified file never sits at the final path.
An interrupted download resumes from the `.part` file with an HTTP Range
request; network errors are retried with exponential backoff.

Verification: the music pickles are loaded with a refuse-every-global
unpickler and their content fingerprints (pieces, frames, note-ons per split)
compared with `music.FINGERPRINTS` (their bytes vary between pickle versions);
the PTB files are checked against `ptb.MD5`. ptb.char.train.txt is taken from
the tarball if it matches its MD5, else rebuilt from ptb.train.txt with
`ptb.words_to_chars` (the rule that yields the distributed valid/test files).
"""

from __future__ import annotations

import argparse
import errno
import hashlib
import http.client
import os
import pathlib
import re
import socket
import sys
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request

from absl import logging

from datasets import _files
from training.errors import RunError
from datasets import music
from datasets import ptb

MUSIC_URL = 'http://www-etud.iro.umontreal.ca/~boulanni/'
PTB_URL = 'http://www.fit.vutbr.cz/~imikolov/rnnlm/simple-examples.tgz'
_PTB_MEMBER = re.compile(r'(?:\./)?simple-examples/data/(ptb\.[\w.]+\.txt)')


class DownloadError(RunError, RuntimeError):
  """A download failed after all retries (or at once, where retrying cannot help)."""


# Errors of writing the data folder (full, read-only, not ours): never retried.
LOCAL_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM)


class VerificationError(DownloadError):
  """A downloaded file is not the expected content (nothing was installed)."""


class _ShortRead(Exception):
  """The connection closed before the announced length (retryable)."""


def fetch(url: str, dest, verify=None, *, retries: int = 4,
          backoff_s: float = 2.0, timeout_s: float = 60.0,
          progress: bool = True) -> pathlib.Path:
  """Downloads `url` to `dest` atomically, resuming a partial download.

  Args:
    url: http(s) URL.
    dest: final path; the data goes to `dest + '.part'` first.
    verify: callable(path) run on the complete `.part` file; raising means
      bad content: the `.part` file is deleted and VerificationError raised.
    retries: extra attempts after a network error or a short read; each
      resumes where the `.part` file ends. Waits backoff_s * 2**attempt.
    timeout_s: socket timeout per attempt.
    progress: print progress to stderr.

  Returns:
    `dest`, holding the verified file.
  """
  dest = pathlib.Path(dest)
  dest.parent.mkdir(parents=True, exist_ok=True)
  part = dest.with_name(dest.name + '.part')
  for attempt in range(retries + 1):
    try:
      _download(url, part, timeout_s, progress)
      break
    except (_ShortRead, http.client.HTTPException, OSError) as e:
      if isinstance(e, OSError) and e.errno in LOCAL_ERRORS:
        raise       # the data folder, not the network: retrying cannot help
      if isinstance(e, urllib.error.HTTPError) and e.code not in (
          408, 429, 500, 502, 503, 504):
        raise DownloadError(f'{url}: HTTP {e.code} {e.reason}') from e
      if isinstance(getattr(e, 'reason', None), socket.gaierror):
        raise DownloadError(f'{url}: cannot resolve the host name ({e.reason.strerror}; '
                            'no network?)') from e
      if attempt == retries:
        resume = (f'; rerun to resume from {part}' if part.exists() and part.stat().st_size
                  else '')
        raise DownloadError(f'{url}: giving up after {retries + 1} attempts '
                            f'({e}){resume}') from e
      logging.warning('%s: %s; retrying in %.0f s', url, e,
                      backoff_s * 2**attempt)
      time.sleep(backoff_s * 2**attempt)
  if verify is not None:
    try:
      verify(part)
    except Exception as e:
      part.unlink()
      raise VerificationError(f'{url}: downloaded file failed verification, '
                              f'deleted it: {e}') from e
  os.replace(part, dest)
  return dest


def _download(url, part, timeout_s, progress):
  """One attempt: append to `part` from its current size to the end."""
  have = part.stat().st_size if part.exists() else 0
  request = urllib.request.Request(url)
  if have:
    request.add_header('Range', f'bytes={have}-')
  try:
    response = urllib.request.urlopen(request, timeout=timeout_s)
  except urllib.error.HTTPError as e:
    if e.code != 416:   # 416: the range starts at or past the end
      raise
    part.unlink()       # not shorter than the file: cannot trust it
    raise _ShortRead('partial file is not shorter than the file; '
                     'restarting') from e
  with response:
    resumed = response.status == 206
    if have and not resumed:
      have = 0          # the server ignored Range: take the whole body
    elif resumed and not response.headers.get(
        'Content-Range', '').startswith(f'bytes {have}-'):
      part.unlink()
      raise _ShortRead('server resumed at the wrong offset; restarting')
    length = response.headers.get('Content-Length')
    total = have + int(length) if length is not None else None
    done = have
    shown = 0.0
    with open(part, 'ab' if resumed else 'wb') as f:
      while block := response.read(1 << 16):
        f.write(block)
        done += len(block)
        if progress and time.monotonic() - shown > 0.5:
          shown = time.monotonic()
          _show(url, done, total)
  if progress:
    _show(url, done, total, end='\n')
  if total is not None and done < total:
    raise _ShortRead(f'connection closed at byte {done} of {total}')


def _show(url, done, total, end=''):
  name = urllib.parse.unquote(url.rsplit('/', 1)[-1])
  pct = f' {100 * done / total:5.1f}%' if total else ''
  sys.stderr.write(f'\r{name}: {done / 2**20:.1f} MiB{pct}{end}')
  sys.stderr.flush()


def _check_music(name, expected):
  def verify(path):
    music.check_fingerprints(name, music.piano_rolls(_files.safe_load(path)),
                             expected)
  return verify


def download_music(data_dir=None, names=music.NAMES, *,
                   base_url: str = MUSIC_URL, fingerprints=None,
                   **fetch_kwargs) -> list[pathlib.Path]:
  """Fetches `music/<Name>.pickle` for each name; skips verified files.

  Args:
    data_dir: data folder (see _files.resolve_data_dir).
    names: data set names or aliases.
    base_url: folder URL the file names are appended to (URL-quoted).
    fingerprints: {canonical name: {split: (pieces, frames, note-ons)}};
      default music.FINGERPRINTS.
    **fetch_kwargs: passed to `fetch` (retries, backoff_s, progress, ...).
  """
  folder = _files.resolve_data_dir(data_dir) / 'music'
  paths = []
  for name in map(music.canonical_name, names):
    expected = (fingerprints or music.FINGERPRINTS)[name]
    dest = folder / music.file_name(name)
    verify = _check_music(name, expected)
    if not _already_there(dest, verify):
      url = base_url.rstrip('/') + '/' + urllib.parse.quote(dest.name)
      fetch(url, dest, verify, **fetch_kwargs)
    paths.append(dest)
  return paths


def _already_there(dest, verify):
  if not dest.exists():
    return False
  try:
    verify(dest)
  except Exception as e:   # a bad file is replaced, never trusted
    logging.warning('%s failed verification (%s); downloading again', dest, e)
    return False
  logging.info('%s: present and verified', dest)
  return True


def _check_md5(expected):
  def verify(path):
    got = _files.md5sum(path)
    if got != expected:
      raise ValueError(f'{pathlib.Path(path).name}: md5 {got}, expected '
                       f'{expected}')
  return verify


def _check_tarball(path):
  with tarfile.open(path, 'r:gz') as tar:   # reads it all: catches truncation
    names = {m.group(1) for m in map(_PTB_MEMBER.fullmatch, tar.getnames())
             if m}
  missing = {ptb.file_name('word', s) for s in ptb.SPLITS} - names
  if missing:
    raise ValueError(f'tarball lacks {sorted(missing)}')


def _write_verified(dest, data: bytes, expected_md5):
  part = dest.with_name(dest.name + '.part')
  part.write_bytes(data)
  try:
    _check_md5(expected_md5)(part)
  except ValueError as e:
    part.unlink()
    raise VerificationError(str(e)) from e
  os.replace(part, dest)


def download_ptb(data_dir=None, *, url: str = PTB_URL, md5=None,
                 keep_archive: bool = False, **fetch_kwargs
                 ) -> list[pathlib.Path]:
  """Fetches simple-examples.tgz and installs `ptb/ptb.*.txt` from it.

  Only members `./simple-examples/data/ptb.*.txt` named in `md5` are read;
  nothing else is extracted. Skips the download if all files verify.

  Args:
    data_dir: data folder (see _files.resolve_data_dir).
    url: tarball URL.
    md5: {file name: md5}; default ptb.MD5.
    keep_archive: keep `ptb/simple-examples.tgz` afterwards.
    **fetch_kwargs: passed to `fetch`.
  """
  md5 = md5 or ptb.MD5
  folder = _files.resolve_data_dir(data_dir) / 'ptb'
  dests = [folder / name for name in md5]
  if all(_already_there(d, _check_md5(md5[d.name])) for d in dests):
    return dests
  archive = fetch(url, folder / 'simple-examples.tgz', _check_tarball,
                  **fetch_kwargs)
  try:
    _install_ptb(archive, dests, md5, url)
  finally:
    if not keep_archive:
      archive.unlink()
  return dests


def _install_ptb(archive, dests, md5, url):
  with tarfile.open(archive, 'r:gz') as tar:
    members = {}
    for member in tar.getmembers():
      match = _PTB_MEMBER.fullmatch(member.name)
      if match and member.isfile() and match.group(1) in md5:
        members[match.group(1)] = tar.extractfile(member).read()
  char_train = 'ptb.char.train.txt'
  if (char_train in md5 and 'ptb.train.txt' in members and hashlib.md5(
      members.get(char_train, b'')).hexdigest() != md5[char_train]):
    logging.info('%s: rebuilding from ptb.train.txt (tarball copy %s)',
                 char_train, 'differs' if char_train in members else 'absent')
    words = members['ptb.train.txt'].decode('utf-8')
    members[char_train] = ptb.words_to_chars(words).encode('utf-8')
  missing = set(md5) - set(members)
  if missing:
    raise VerificationError(f'{url}: tarball lacks {sorted(missing)}')
  for dest in dests:
    _write_verified(dest, members[dest.name], md5[dest.name])


def main(argv=None):
  parser = argparse.ArgumentParser(
      prog='python -m datasets.download', description=__doc__.split('\n')[0])
  parser.add_argument('corpus', nargs='?', default='all',
                      choices=_files.DOWNLOADABLE)   # what the data errors offer to fetch
  parser.add_argument('--data_dir', default=None, help=(
      f'data folder (default: ${_files.ENV_VAR}, else '
      f'{_files.DEFAULT_DATA_DIR})'))
  args = parser.parse_args(argv)
  logging.set_verbosity(logging.INFO)
  data_dir = _files.resolve_data_dir(args.data_dir)
  try:
    if args.corpus in ('music', 'all'):
      download_music(data_dir)
    if args.corpus in ('ptb', 'all'):
      download_ptb(data_dir)
  except VerificationError as e:
    sys.exit(f'download failed: {e}. The source served other content than the original; '
             f'rerun to fetch it again, or place the original files by hand in '
             f'{data_dir}/music/ and {data_dir}/ptb/ (names in datasets/_files.py)')
  except DownloadError as e:
    sys.exit(f'download failed: {e}. Without the network, place the original files by hand '
             f'in {data_dir}/music/ and {data_dir}/ptb/ (names in datasets/_files.py), or point '
             f'${_files.ENV_VAR} (or --config.data_dir) at a folder that has them')
  except OSError as e:
    sys.exit(f'cannot write the data folder {data_dir}: {e.strerror}; choose another with '
             f'--data_dir or ${_files.ENV_VAR}')
  except KeyboardInterrupt:
    sys.exit('interrupted: what was downloaded is kept (a .part file beside its name); '
             'rerun the same command to resume')
  logging.info('data ready in %s', data_dir)


if __name__ == '__main__':
  main()
