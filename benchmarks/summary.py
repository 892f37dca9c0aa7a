r"""The Markdown table of a bench run, printed from its raw JSON lines.

    python -m benchmarks.summary benchmarks/results/cpu_2026-12-05c_xeon.jsonl [MORE.jsonl ...]

For each file (what ``python launch.py bench --peer`` printed, ``benchmarks.run``)
one table, a row per workload:

- ours and PyTorch: the median timesteps/s of the configuration the ``ratio``
  record chose for each side (its faster one), with that configuration: ours
  ``threads1`` is "1 core" (a fresh process pinned to one core), ours ``default``
  "N threads" (the record's ``cores_used``, the cores the process might use;
  records before 2026-12-06 have only ``cpus``, the machine's count); PyTorch's "N thread(s)" from its
  ``torch_threads`` (", passive" for ``OMP_WAIT_POLICY=PASSIVE``);
- rnnopt / PyTorch: the ratio record's two medians, divided (its
  ``jax_over_torch`` before that is rounded to 3 decimals);
- per round: the lowest and highest of ours over PyTorch in round i, from the
  two chosen configurations' ``timesteps_per_s_rounds`` (the bench alternates
  the two sides' order every round, so round i of one side is timed next to
  round i of the other);
- floor: ``FLOORS`` and a verdict: "met" (ratio >= floor), "missed", or
  "within noise" when the per-round range straddles the floor (some round
  below it, some at or above);
- one core against one thread: ours ``threads1`` over PyTorch's ``threads1``
  (the pair ``ratios['threads1/threads1']`` of the ratio record; what ``sweep``
  and ``reproduce`` workers run), '–' if either side lacks it.

Then, if the file has them, the populations: each layout's speedup over the
same members trained one after another, and the floor against the layout
``'auto'`` takes. The bench keeps only the median of the one-after-another
rounds, so these have no per-round range.

Workloads without a ratio record (a bench run without ``--peer``) get our
faster configuration and '–' for the rest. Rates are written as RESULTS.md
writes them (2.28M, 157.9k), ratios to 2 decimals.

No JAX here: this reads JSON only (``benchmarks.workloads`` imports JAX).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence

# The floors the project set itself (issue 14, closed): the ratio ours / PyTorch
# each workload should reach, as RESULTS.md's "Training speed against PyTorch"
# tables state them; the bfloat16 rows compare our bfloat16 products with
# PyTorch's float32.
FLOORS: dict[str, float] = {
    'torder_tanh_h50': 4.0,
    'music_sigmoid_h300': 2.0,
    'music_tanh_h300_fused': 1.5,
    'charlm_lstm_h512': 0.75,
    'charlm_gru_h512': 1.5,
    'charlm_lstm_h512_bf16': 1.0,
    'charlm_gru_h512_bf16': 2.0,
    'music_sigmoid_h300_b1': 4.0,
    'ptb_sigmoid_h500_b1': 4.0,
}
# Issue 14 too: a population of members as one program at least as fast as the
# same members trained one after another.
POPULATION_FLOOR = 1.0
DASH = '–'


def load(path: str) -> list[dict]:
  """The JSON records of a file (lines that are not a JSON object are skipped)."""
  with open(path) as f:
    return [json.loads(line) for line in f if line.lstrip().startswith('{')]


def fmt_rate(x: float) -> str:
  """Timesteps/s as RESULTS.md writes them: 2.28M, 291.4k, 950."""
  if round(x / 1e3, 1) >= 1000:
    return f'{x / 1e6:.2f}M'
  if round(x) >= 1000:
    return f'{x / 1e3:.1f}k'
  return f'{x:.0f}'


def fmt_ratio(x: float) -> str:
  return f'{x:.2f}'


def fmt_bound(x: float, floor: float | None) -> str:
  """A bound of a per-round range: 2 decimals, more where 2 would print it as
  the floor itself (0.748 against 0.75), which would hide on which side it lies."""
  digits = 2
  while floor is not None and x != floor and round(x, digits) == floor and digits < 5:
    digits += 1
  return f'{x:.{digits}f}'


def round_ratios(ours: Sequence[float], theirs: Sequence[float]) -> list[float]:
  """Ours over theirs, round by round."""
  return [a / b for a, b in zip(ours, theirs)]


def verdict(ratio: float, lo: float | None, hi: float | None, floor: float) -> str:
  """'within noise' when the rounds fall on both sides of the floor (lo < floor
  <= hi), else 'met' (ratio >= floor) or 'missed'."""
  if lo is not None and hi is not None and lo < floor <= hi:
    return 'within noise'
  return 'met' if ratio >= floor else 'missed'


def ours_label(record: dict) -> str:
  if record.get('jax_config', 'default') == 'threads1':
    return '1 core'
  n = record.get('cores_used') or record.get('cpus')   # older records: the machine's count
  return f'{n} thread{"" if n == 1 else "s"}' if n else 'default'


def peer_label(record: dict) -> str:
  n = record.get('torch_threads') or record.get('cores_used')
  label = f'{n} thread{"" if n == 1 else "s"}' if n else record.get('config', '?')
  return label + (', passive' if record.get('config') == 'passive' else '')


def _index(records: Iterable[dict]) -> tuple[list[str], dict, dict, dict, dict]:
  """Workload names in the file's order, and its records by (workload, config)
  for ours and PyTorch's, by workload for the ratios, by (population, layout)."""
  order, ours, peer, ratios, pops = [], {}, {}, {}, {}

  def put(table, key, record):
    if key in table:
      print(f'warning: more than one record for {key}; the last is used', file=sys.stderr)
    table[key] = record

  for r in records:
    name = r.get('workload')
    if name is None:
      continue
    if 'speedup' in r:                                   # a population layout
      put(pops, (name, r.get('layout', DASH)), r)
      continue
    if name not in order:
      order.append(name)
    if r.get('kind') == 'ratio':
      put(ratios, name, r)
    elif r.get('framework') == 'jax':
      put(ours, (name, r.get('jax_config', 'default')), r)
    elif r.get('framework') == 'torch':
      put(peer, (name, r.get('config', 'default')), r)
  return order, ours, peer, ratios, pops


def rows(records: Iterable[dict]) -> list[dict]:
  """One dict per workload: the numbers of its table row (None where absent)."""
  order, ours, peer, ratios, _ = _index(records)
  out = []
  for name in order:
    floor = FLOORS.get(name)
    row = dict(workload=name, floor=floor, ours=None, ours_config=None, peer=None,
               peer_config=None, ratio=None, lo=None, hi=None, verdict=None, one_core=None)
    r = ratios.get(name)
    if r is None:               # no peer: our faster configuration
      mine = [rec for (w, _), rec in ours.items() if w == name]
      if mine:
        best = max(mine, key=lambda rec: rec['timesteps_per_s'])
        row.update(ours=best['timesteps_per_s'], ours_config=ours_label(best))
      out.append(row)
      continue
    a = ours.get((name, r.get('jax_config', 'default')))
    b = peer.get((name, r['peer_config']))
    # Ratios from the medians, not the record's 3-decimal roundings of them:
    # rounding 7.1648 to 7.165 and then to 2 decimals would print 7.17.
    one_a, one_b = ours.get((name, 'threads1')), peer.get((name, 'threads1'))
    one_core = (one_a['timesteps_per_s'] / one_b['timesteps_per_s'] if one_a and one_b
                else r.get('ratios', {}).get('threads1/threads1'))
    row.update(ours=r['jax_timesteps_per_s'], peer=r['torch_timesteps_per_s'],
               ratio=r['jax_timesteps_per_s'] / r['torch_timesteps_per_s'],
               ours_config=ours_label(a) if a else r.get('jax_config', 'default'),
               peer_config=peer_label(b) if b else r['peer_config'], one_core=one_core)
    if a and b:
      per_round = round_ratios(a['timesteps_per_s_rounds'], b['timesteps_per_s_rounds'])
      if per_round:
        row.update(lo=min(per_round), hi=max(per_round))
    if floor is not None:
      row['verdict'] = verdict(row['ratio'], row['lo'], row['hi'], floor)
    out.append(row)
  return out


def population_rows(records: Iterable[dict]) -> list[dict]:
  """One dict per population workload: members, speedup per layout, the layout
  'auto' takes and the floor's verdict for it."""
  *_, pops = _index(records)
  out = {}
  for (name, layout), r in pops.items():
    row = out.setdefault(name, dict(workload=name, members=r.get('members'), speedup={},
                                    auto=r.get('auto_layout')))
    row['speedup'][layout] = r['speedup']
  for row in out.values():
    chosen = row['speedup'].get(row['auto']) if row['auto'] else None
    row['verdict'] = None if chosen is None else (
        'met' if chosen >= POPULATION_FLOOR else 'missed')
  return list(out.values())


def _cell(x, fmt=fmt_ratio) -> str:
  return DASH if x is None else fmt(x)


def table(records: Sequence[dict]) -> str:
  """The Markdown table of the workloads (and, if any, of the populations)."""
  lines = ['| workload | ours | PyTorch | rnnopt / PyTorch | per round | floor | '
           'one core against one thread |', '|---|---|---|---|---|---|---|']
  for r in rows(records):
    name = f'`{r["workload"]}`'
    if r['workload'].endswith('_bf16'):
      name += ' (ours bf16 / PyTorch fp32)'
    ours = DASH if r['ours'] is None else f'{fmt_rate(r["ours"])} ({r["ours_config"]})'
    peer = DASH if r['peer'] is None else f'{fmt_rate(r["peer"])} ({r["peer_config"]})'
    ratio = DASH if r['ratio'] is None else f'**{fmt_ratio(r["ratio"])}**'
    span = DASH if r['lo'] is None else (
        f'{fmt_bound(r["lo"], r["floor"])}-{fmt_bound(r["hi"], r["floor"])}')
    floor = DASH if r['floor'] is None else (
        f'{r["floor"]:g}' + (f': {r["verdict"]}' if r['verdict'] else ''))
    lines.append(f'| {name} | {ours} | {peer} | {ratio} | {span} | {floor} | '
                 f'{_cell(r["one_core"])} |')
  pops = population_rows(records)
  if pops:
    layouts = list(dict.fromkeys(l for p in pops for l in p['speedup']))   # the file's order
    lines += ['', '| population, speedup over its members one after another | '
              + ' | '.join(layouts) + ' | auto layout | floor |',
              '|---|' + '---|' * len(layouts) + '---|---|']
    for p in pops:
      members = f' ({p["members"]} members)' if p['members'] else ''
      floor = f'{POPULATION_FLOOR:g}' + (f': {p["verdict"]}' if p['verdict'] else '')
      lines.append(f'| `{p["workload"]}`{members} | '
                   + ' | '.join(_cell(p['speedup'].get(l)) for l in layouts)
                   + f' | {p["auto"] or DASH} | {floor} |')
  return '\n'.join(lines)


def summarize(path: str) -> str:
  """A heading naming the file and its machine, then its table."""
  records = load(path)
  first = next((r for r in records if 'cpu' in r), {})
  torch = next((r.get('torch_version') for r in records if r.get('torch_version')), None)
  rounds = sorted({r['rounds'] for r in records if 'rounds' in r})
  about = ', '.join(x for x in (
      first.get('cpu'), first.get('jax') and f'jax {first["jax"]}', torch and f'torch {torch}',
      rounds and f'{"/".join(map(str, rounds))} rounds') if x)
  return f'`{path}`' + (f': {about}' if about else '') + '\n\n' + table(records)


def main(argv: Sequence[str]) -> int:
  if not argv:
    print(__doc__.strip().splitlines()[0], file=sys.stderr)
    print('usage: python -m benchmarks.summary FILE.jsonl [FILE.jsonl ...]', file=sys.stderr)
    return 2
  print('\n\n'.join(summarize(p) for p in argv))
  return 0


if __name__ == '__main__':
  sys.exit(main(sys.argv[1:]))
