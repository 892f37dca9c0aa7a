"""Several hosts: two processes joined by jax.distributed (2 CPU devices
each) give the numbers of one process with 4 devices and of one with 1."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from training import distributed

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize('kwargs,message', [
    (dict(num_processes=2, process_id=0), 'need --coordinator_address'),
    (dict(coordinator_address='127.0.0.1:1'), 'needs --num_processes and --process_id'),
    (dict(coordinator_address='127.0.0.1:1', num_processes=2, process_id=2), 'not in [0, 2)'),
])
def test_incomplete_coordinator_flags_are_one_line_errors(kwargs, message):
  with pytest.raises(ValueError, match=message.replace('[', r'\[').replace(')', r'\)')):
    distributed.initialize(**kwargs)


def test_single_process_needs_nothing():
  assert distributed.initialize() is False
  assert distributed.is_main()


# One process of the run: joins the others when given an address, then
# trains a population of 4 members on a synthetic and on a music problem
# (the music data is captured by the compiled program: a host-local array
# must still work when the mesh spans processes).
SCRIPT = r'''
import json, sys
import numpy as np
from training import distributed
address, nproc, pid, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
if nproc > 1:
  distributed.initialize(coordinator_address=address, num_processes=nproc, process_id=pid)
import jax
from training import train
from tests.test_population import population_config
from tests.test_music_train import random_rolls, toy_music_config

results = {}
config = population_config(seeds=(0, 1), lrs=(0.01, 0.05), steps=20)
results['synthetic'] = train.train_and_evaluate(config, out + '/synthetic')

rng = np.random.default_rng(1)
rolls = {s: random_rolls(rng, [25, 40, 18]) for s in ('train', 'valid', 'test')}
config = toy_music_config()
with config.unlocked():
  config.task.chunk = 10
  config.population.seeds = (0, 1, 2, 3)
results['music'] = train.train_and_evaluate(config, out + '/music', data=rolls)
print('RESULT ' + json.dumps(results))
'''


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def _launch(num_processes, devices_each, out):
  env = dict(os.environ, JAX_PLATFORMS='cpu',
             XLA_FLAGS=f'--xla_force_host_platform_device_count={devices_each}')
  address = f'127.0.0.1:{_free_port()}'
  procs = [subprocess.Popen([sys.executable, '-c', SCRIPT, address, str(num_processes), str(i),
                             str(out)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
           for i in range(num_processes)]
  outputs = [p.communicate(timeout=600) for p in procs]
  for p, (stdout, stderr) in zip(procs, outputs):
    assert p.returncode == 0, stderr[-3000:]
  lines = [l for l in outputs[0][0].splitlines() if l.startswith('RESULT ')]
  return json.loads(lines[-1][len('RESULT '):]), [o[0] for o in outputs]


@pytest.mark.slow
def test_two_processes_equal_one(tmp_path):
  two, stdouts = _launch(2, 2, tmp_path / 'two')
  four, _ = _launch(1, 4, tmp_path / 'four')
  one, _ = _launch(1, 1, tmp_path / 'one')
  for task in ('synthetic', 'music'):
    assert 'pop=4 x data=1' in two[task]['devices'], two[task]['devices']
    assert 'pop=4' in four[task]['devices'] and 'pop=1 x data=1' in one[task]['devices']
    for a, b, c in zip(two[task]['members'], four[task]['members'], one[task]['members']):
      np.testing.assert_allclose(a['test_loss'], b['test_loss'], rtol=1e-5)
      np.testing.assert_allclose(a['test_loss'], c['test_loss'], rtol=1e-5)
  # Only the main process prints and writes the run's files.
  assert 'test loss' in stdouts[0] and 'test loss' not in stdouts[1]
  for task in ('synthetic', 'music'):
    lines = (tmp_path / 'two' / task / 'metrics.jsonl').read_text().splitlines()
    steps = [json.loads(l)['step'] for l in lines if json.loads(l)['split'] == 'train']
    assert len(steps) == len(set(steps)) * 4    # once per member, not once per process
