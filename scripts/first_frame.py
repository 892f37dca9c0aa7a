"""How much scoring each music piece's first frame would move a test NLL.

    python scripts/first_frame.py [--data_dir DIR]

Our music tasks score frames 1..T-1 of a piece, each predicted from the
frames before it (``datasets.music.bptt_batches``), as the study's TCN code
does (``x = piece[:-1], y = piece[1:]``); a model with an output from its
initial state could also score frame 0, from no context (Boulanger-Lewandowski
et al.'s RNN-RBM conditions its first frame on its initial state). The
papers do not say which they report. From no context, the best a model can
do for frame 0 is the distribution of first frames; this prints, for each
test set, the share of frames that are first frames and their NLL under the
training set's first-frame key frequencies (independent keys, add-1/2
smoothing), so the shift of a per-frame score S is about
``share * (NLL_0 - S)``.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from datasets import music  # noqa: E402


def first_frame_nll(train: list[np.ndarray], test: list[np.ndarray]) -> float:
  """Mean NLL (nats, summed over keys) of the test pieces' first frames
  under independent Bernoulli keys fitted to the training pieces' first frames."""
  first = np.stack([np.asarray(p[0], np.float64) for p in train if len(p)])
  p = (first.sum(0) + 0.5) / (len(first) + 1.0)
  return float(np.mean([-np.log(np.where(np.asarray(x[0]) > 0, p, 1.0 - p)).sum()
                        for x in test if len(x)]))


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--data_dir', default=None)
  args = parser.parse_args()
  print('| data set | test pieces | frames scored now | first frames, share of all | '
        'NLL of a first frame, training first-frame frequencies |')
  print('|---|---|---|---|---|')
  for name in ('jsb', 'nottingham', 'piano', 'musedata'):
    data = music.load_music(name, args.data_dir)
    test = data['test']
    scored = sum(len(x) - 1 for x in test)
    share = len(test) / (scored + len(test))
    print(f'| {name} | {len(test)} | {scored:,} | {share:.4f} | '
          f'{first_frame_nll(data["train"], test):.2f} |')


if __name__ == '__main__':
  main()
