"""Several hosts as one run: one process per host, every device in one mesh.

    python launch.py --config=... --workdir=SHARED_DIR --distributed          # on a cluster
    python launch.py --config=... --workdir=SHARED_DIR \
        --coordinator_address=HOST0:1234 --num_processes=2 --process_id=I     # by hand

``initialize`` starts ``jax.distributed`` before any computation: with no
address it lets JAX detect the cluster (SLURM, Open MPI, Cloud TPU...);
with an address it joins the processes named by hand. Afterwards
``jax.devices()`` lists the devices of every process, so the trainer's
(pop, data) mesh spans all hosts and each host runs its share of the
members and of their batches. The workdir must be a folder every process
sees (orbax writes each host's shards of a checkpoint there).

Everything else is the single-process code, with two rules:
- values read back to the host go through ``to_host`` (a member-sharded
  array is not on any one process: it is gathered from all of them);
- files other than checkpoints, and the progress lines, are written by the
  main process only (``is_main``).
On one process both rules are no-ops.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils


def initialize(auto: bool = False, coordinator_address: str | None = None,
               num_processes: int | None = None, process_id: int | None = None) -> bool:
  """Joins the other processes of a multi-host run; returns whether it did.

  Neither ``auto`` nor an address: a single-process run, nothing to do.
  """
  by_hand = (coordinator_address, num_processes, process_id)
  if coordinator_address is None and (num_processes is not None or process_id is not None):
    raise ValueError('--num_processes and --process_id need --coordinator_address=HOST:PORT')
  if coordinator_address is not None and (num_processes is None or process_id is None):
    raise ValueError('--coordinator_address needs --num_processes and --process_id')
  if coordinator_address is not None and not 0 <= process_id < num_processes:
    raise ValueError(f'--process_id={process_id} is not in [0, {num_processes})')
  if not auto and coordinator_address is None:
    return False
  # CPU devices of different processes talk over TCP (no effect on accelerators)
  jax.config.update('jax_cpu_collectives_implementation', 'gloo')
  if coordinator_address is None:
    jax.distributed.initialize()
  else:
    jax.distributed.initialize(*by_hand)
  return True


def is_main() -> bool:
  return jax.process_index() == 0


def to_host(tree: Any) -> Any:
  """The tree's arrays as numpy, gathered from every process if need be."""
  if jax.process_count() == 1:
    return jax.device_get(tree)
  return jax.tree.map(
      lambda x: np.asarray(multihost_utils.process_allgather(x, tiled=True))
      if isinstance(x, jax.Array) else x, tree)
