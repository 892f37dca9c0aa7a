"""TensorBoard event files, written without TensorFlow.

``EventWriter(folder).scalars(step, {tag: value})`` appends scalar summaries
to ``folder/events.out.tfevents.<time>.<host>``, which TensorBoard reads
(``tensorboard --logdir WORKDIR/tensorboard``). No TensorBoard writer is
installed with rnnopt's requirements (``flax.metrics.tensorboard`` and
``clu`` need TensorFlow, ``tensorboardX`` is another dependency), and
scalars need little: the file is TFRecord-framed ``Event`` protocol buffers
(``tensorflow/core/util/event.proto``), a few fields encoded by hand here.
"""

from __future__ import annotations

import os
import socket
import struct
import time

_CRC_TABLE = []
for _i in range(256):
  _c = _i
  for _ in range(8):
    _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1   # CRC-32C (Castagnoli)
  _CRC_TABLE.append(_c)


def crc32c(data: bytes) -> int:
  crc = 0xFFFFFFFF
  for b in data:
    crc = _CRC_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
  return crc ^ 0xFFFFFFFF


def _masked(data: bytes) -> bytes:
  crc = crc32c(data)
  return struct.pack('<I', (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF)


def _varint(n: int) -> bytes:
  out = bytearray()
  n &= (1 << 64) - 1
  while True:
    byte, n = n & 0x7F, n >> 7
    out.append(byte | (0x80 if n else 0))
    if not n:
      return bytes(out)


def _field(number: int, payload: bytes) -> bytes:      # a length-delimited field
  return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _event(wall_time: float, step: int, file_version: str | None = None,
           values: dict | None = None) -> bytes:
  """An ``Event`` message: wall_time (1, double), step (2, int64), file_version
  (3, string) or summary (5: ``Summary`` of ``Value``s: tag 1, simple_value 2)."""
  msg = _varint(1 << 3 | 1) + struct.pack('<d', wall_time) + _varint(2 << 3) + _varint(step)
  if file_version is not None:
    msg += _field(3, file_version.encode())
  if values:
    summary = b''.join(_field(1, _field(1, tag.encode()) + _varint(2 << 3 | 5)
                                  + struct.pack('<f', value)) for tag, value in values.items())
    msg += _field(5, summary)
  return msg


def _record(data: bytes) -> bytes:                    # TFRecord framing
  length = struct.pack('<Q', len(data))
  return length + _masked(length) + data + _masked(data)


class EventWriter:
  """Appends scalar events to a new events file in ``folder``."""

  def __init__(self, folder: str):
    os.makedirs(folder, exist_ok=True)
    self.path = os.path.join(
        folder, f'events.out.tfevents.{time.time():.6f}.{socket.gethostname()}.{os.getpid()}')
    with open(self.path, 'ab') as f:
      f.write(_record(_event(time.time(), 0, file_version='brain.Event:2')))

  def scalars(self, step: int, values: dict) -> None:
    values = {k: float(v) for k, v in values.items()}
    if values:
      with open(self.path, 'ab') as f:
        f.write(_record(_event(time.time(), int(step), values=values)))


def read_scalars(path: str) -> list[tuple[int, str, float]]:
  """(step, tag, value) of every scalar in an events file written here (for tests);
  checks every record's checksums."""
  out = []
  with open(path, 'rb') as f:
    data = f.read()
  i = 0
  while i < len(data):
    length = data[i:i + 8]
    (n,) = struct.unpack('<Q', length)
    assert data[i + 8:i + 12] == _masked(length), 'length checksum'
    msg = data[i + 12:i + 12 + n]
    assert data[i + 12 + n:i + 16 + n] == _masked(msg), 'data checksum'
    i += 16 + n
    step, j = 0, 9                      # after wall_time's tag and 8 bytes
    assert msg[j] == 2 << 3
    step, j = _read_varint(msg, j + 1)
    while j < len(msg):
      key, j = _read_varint(msg, j)
      size, j = _read_varint(msg, j)
      if key >> 3 == 5:
        out.extend((step, tag, v) for tag, v in _read_summary(msg[j:j + size]))
      j += size
  return out


def _read_varint(buf: bytes, i: int) -> tuple[int, int]:
  n = shift = 0
  while True:
    b = buf[i]
    n |= (b & 0x7F) << shift
    shift += 7
    i += 1
    if not b & 0x80:
      return n, i


def _read_summary(buf: bytes):
  i = 0
  while i < len(buf):
    _, i = _read_varint(buf, i)
    size, i = _read_varint(buf, i)
    value, i = buf[i:i + size], i + size
    tag_size, k = _read_varint(value, 1)
    tag = value[k:k + tag_size].decode()
    (v,) = struct.unpack('<f', value[k + tag_size + 1:k + tag_size + 5])
    yield tag, v
