"""The wall time of every ``launch.py reproduce`` target on this machine, from
the records of its finished jobs.

    python -m reporting.walltimes results     # prints the Markdown table

Each job's time is its runs' ``wall_time_s`` (training and evaluation,
summed over resumes; for a sweep, summed over its units): core-minutes of
one pinned single-threaded process. A target's total is the sum of its
finished jobs, so with W cores its wall time is about total / W when the
jobs spread evenly (``reproduce._plan`` packs them longest first). The code
version each record was made with is listed too: a job timed before a
speed-up took longer than it would now.
"""

from __future__ import annotations

import glob
import os
import sys

from orchestration import reproduce
from training import records


def job_time(workdir: str) -> dict | None:
  """{'minutes', 'runs', 'updates', 'code'} of a finished job's records; None
  when it has none."""
  paths = sorted(glob.glob(os.path.join(workdir, '**', 'result.json'), recursive=True))
  results = [r for r in (records.read_json(p) for p in paths) if r and 'wall_time_s' in r]
  if not results:
    return None
  return dict(minutes=sum(r['wall_time_s'] for r in results) / 60, runs=len(results),
              updates=sum(r.get('step', 0) for r in results),
              code=sorted({r.get('code_version', '?') for r in results}))


def rows(root: str) -> list[dict]:
  out = []
  for target in reproduce.TARGETS.values():
    folder = os.path.join(root, target.key.replace('.', '_'))
    for job in target.jobs:
      workdir = os.path.join(folder, job.name)
      t = job_time(workdir) if job.finished(workdir) else None
      out.append(dict(target=target.key, job=job.name, time=t))
  return out


def markdown(table_rows: list[dict]) -> str:
  lines = ['| target | job | wall time, one core | runs | updates | updates/s | code version |',
           '|---|---|---|---|---|---|---|']
  totals: dict = {}
  for r in table_rows:
    t = r['time']
    totals.setdefault(r['target'], [0.0, 0])
    if t is None:
      totals[r['target']][1] += 1
      continue
    totals[r['target']][0] += t['minutes']
    rate = t['updates'] / (60 * t['minutes']) if t['minutes'] else 0.0
    lines.append(f'| `{r["target"]}` | {r["job"]} | {t["minutes"]:.1f} min | {t["runs"]} | '
                 f'{t["updates"]:,} | {rate:.0f} | {", ".join(t["code"])} |')
  lines += ['', '| target | finished jobs, one core in all | jobs not finished |', '|---|---|---|']
  for target, (minutes, missing) in totals.items():
    lines.append(f'| `{target}` | {minutes / 60:.1f} h | {missing} |')
  return '\n'.join(lines) + '\n'


def main(argv: list[str]) -> str:
  root = argv[1] if len(argv) > 1 else 'results'
  if not os.path.isdir(root):
    raise SystemExit(f'no such folder: {root}')
  text = markdown(rows(root))
  print(text)
  return text


if __name__ == '__main__':
  main(sys.argv)
