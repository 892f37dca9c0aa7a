r"""Scores a Penn Treebank run's parameters, statically, on stretches of its
own training text beside validation: is the gap between the training loss
the run logs and its validation loss overfitting, or the online loss of a
model that follows the text it was just trained on?

The logged training loss is measured on each window before its update, by
parameters that the windows just before it moved (with clipping, by a step
of lr x threshold every update). This scores fixed parameters instead, as
validation is scored: the first and the last ``--symbols`` of the training
text, each one unbroken stream, beside the validation stream.

    python scripts/ptb_train_stretches.py results/pascanu2013_table2/next_rnnlm [--symbols=393041]

Prints bits per character per member for the final parameters and those at
each member's best validation.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from orchestration import reproduce  # noqa: E402
from tasks import text  # noqa: E402
from training import population, records, train  # noqa: E402


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('workdir')
  parser.add_argument('--symbols', type=int, default=393_041, help='length of each stretch')
  args = parser.parse_args(argv)
  config = reproduce.load_config(
      records.read_json(os.path.join(args.workdir, 'config.json'))['origin']['experiment'])
  streams, symbols = text.load(config.task.name.split('_')[1], config.data_dir or None)
  n = args.symbols
  data = (dict(streams, train_first=streams['train'][:n], train_last=streams['train'][-n:]),
          symbols)
  pop = population.make_population(config)
  mesh = population.make_mesh(pop.size, config.task.batch_size)
  trainer = train.build(config, mesh, data)
  with tempfile.TemporaryDirectory() as tmp:    # a copy: a live run deletes its old ones
    steps = sorted(int(s) for s in os.listdir(os.path.join(args.workdir, 'checkpoints'))
                   if s.isdigit())
    shutil.copytree(os.path.join(args.workdir, 'checkpoints', str(steps[-1])),
                    os.path.join(tmp, 'checkpoints', str(steps[-1])))
    run = train._restore_or_init(config, trainer, pop, mesh, train._checkpoints(tmp))
  evaluate = trainer.task.evaluator(trainer.apply, trainer.initial_carry, config.train, None)
  out = {'step': run.step}
  for which, params in (('final', run.state.params), ('best_valid', run.best.params)):
    for split in ('train_first', 'train_last', 'valid'):
      out[f'{which}/{split}'] = [round(m['bpc'], 4) for m in evaluate(params, split)]
  print(json.dumps(out, indent=1))


if __name__ == '__main__':
  main()
