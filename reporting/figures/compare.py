"""Validation curves of several runs on one pair of axes: an ablation beside
its baseline.

    python -m reporting.figures.compare --out FILE.png RUN[#MEMBER][=LABEL] ...

Each argument names a run folder, optionally one member of its population
(``#2``; member 0 by default) and the label its line gets (``=windows of 10``;
by default the folder's name and the member). For example, the PTB word
member at windows of 10 words against the same member at the paper's 40:

    python -m reporting.figures.compare --out results/ablations/ptb_word_window10_full/compare.png \\
        "results/ablations/ptb_word_window10_full=windows of 10" \\
        "results/bengio2013_table2/word_sgd-c/g00_all/part1=windows of 40 (the paper's)"

Two panels, the validation loss in the unit of the runs' table
(``curves.loss_unit``: perplexity, bits per character, nats per frame):

- against epochs (the same data seen), when every run counts epochs
  (``curves.steps_per_epoch``);
- against updates (the same number of parameter changes), on a log axis.

The test at the member's lowest validation loss (``result.json``) is a star
at that validation's position, and its value is in the legend; a run still
going has none. Runs whose units differ are refused: their curves would share
an axis they do not share.
"""

from __future__ import annotations

import os
import sys

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402

from reporting import figures  # noqa: E402
from reporting.figures import curves  # noqa: E402
from reporting.figures import cli  # noqa: E402


def parse_run(arg: str) -> tuple[str, int, str]:
  """``RUN[#MEMBER][=LABEL]`` -> (folder, member, label)."""
  spec, _, label = arg.partition('=')
  folder, _, member = spec.partition('#')
  if member and not member.isdigit():
    raise ValueError(f'{arg!r}: the member after # must be a number, e.g. {folder}#1')
  member = int(member or 0)
  name = os.path.basename(os.path.normpath(folder))
  return folder, member, label or (f'{name} #{member}' if member else name)


def _read(folder: str, member: int):
  for name in ('config.json', 'metrics.jsonl'):
    if not os.path.exists(os.path.join(folder, name)):
      raise ValueError(f'{folder}: no {name} (not a run folder)')
  config, result = curves.read_run(folder)
  metrics = curves.read_metrics(folder)
  if member not in metrics or 'valid' not in metrics[member]:
    raise ValueError(f'{folder}: member {member} has no validation line '
                     f'(members with one: {sorted(m for m in metrics if "valid" in metrics[m])})')
  return config, result, metrics


def draw(runs: list[tuple[str, int, str]]):
  """The figure (the caller closes it). Each validation line has the gid
  ``'{panel}:{i}'`` (panel ``epoch`` or ``update``, ``i`` the run's position)
  and each star ``'{panel}:{i}:test'``, so that tests can find them."""
  read = [(_read(folder, member), member, label) for folder, member, label in runs]
  units = {curves.loss_unit(config, result).label for (config, result, _), _, _ in read}
  if len(units) > 1:
    raise ValueError(f'the runs are scored in different units ({", ".join(sorted(units))}); '
                     'compare runs of one task')
  unit = curves.loss_unit(read[0][0][0], read[0][0][1])
  per_epoch = [curves.steps_per_epoch(config, metrics) for (config, _, metrics), _, _ in read]
  by_epoch = all(per_epoch)
  fig, axes = plt.subplots(1, 2 if by_epoch else 1, figsize=(13 if by_epoch else 7, 4.8),
                           squeeze=False)
  axes = axes[0]
  panels = ([('epoch', axes[0])] if by_epoch else []) + [('update', axes[-1])]
  colours = plt.rcParams['axes.prop_cycle'].by_key()['color']
  for i, ((config, result, metrics), member, label) in enumerate(read):
    valid = metrics[member]['valid']
    steps, y = valid['step'], unit.convert(valid['loss'])
    m = (result or {}).get('members', [])
    m = m[member] if member < len(m) else {}
    test = m.get('test_loss_at_best_valid')
    at = m.get('best_valid_step')
    text = label if test is None else f'{label}: test {float(unit.convert(test)):.4g}'
    for panel, ax in panels:
      x = steps / per_epoch[i] if panel == 'epoch' else steps
      ax.plot(x, y, color=colours[i % len(colours)], lw=2, marker='o', ms=3,
              label=text, gid=f'{panel}:{i}')
      if test is not None and at is not None:
        ax.plot([at / per_epoch[i] if panel == 'epoch' else at], [unit.convert(test)],
                color=colours[i % len(colours)], marker='*', ms=13, ls='none', mec='black',
                mew=0.5, gid=f'{panel}:{i}:test')
  for panel, ax in panels:
    ax.set_xlabel('epoch' if panel == 'epoch' else 'update')
    ax.set_ylabel(f'validation {unit.label}')
    if unit.log:      # perplexities as numbers, 150 not 1.5 x 10^2
      ax.set_yscale('log')
      ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter('%g'))
      ax.yaxis.set_minor_formatter(matplotlib.ticker.FormatStrFormatter('%g'))
    if panel == 'update':
      ax.set_xscale('log')
      ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.grid(alpha=0.3, which='both')
  axes[0].legend(fontsize=8, loc='best', title='star: test at the lowest validation',
                 title_fontsize=8)
  fig.tight_layout()
  return fig


def main(argv: list[str]) -> None:
  figures.draw_to_file(
      argv, 'python -m reporting.figures.compare',
      'Validation curves of several runs (RUN[#MEMBER][=LABEL]) on one pair of axes.',
      'RUN[#MEMBER][=LABEL]', parse_run, draw)


if __name__ == '__main__':
  cli(main, sys.argv[1:], parses_flags=True)
