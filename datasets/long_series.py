"""The synthetic price series of Muccino (2019), "Training Recurrent Neural
Networks on Long Sequences" (Mindboard blog; ``../shared/references``), sec.
"Creating Our Training Data".

A series of L steps (the post: 15 series of 20,000) is

    theta_0 ~ U(-pi, pi),   theta_t = theta_{t-1} + 0.01 U(-1, 1)       (t >= 1)
    a_t = (|cos theta_t|, |sin theta_t|)                 (a point of the unit circle)
    p_t = round(s_0 a_t,0 sin(w_0 t) + s_1 a_t,1 sin(w_1 t) + 100 + eps_t, 2)
    eps_t ~ N(0, noise_std)

with the post's code: signs (s_0, s_1) = (-1, +1), frequencies w_0 = w_1 =
0.0002 rad per step, ``np.random.normal(0, 0.01)`` (standard deviation 0.01;
its text says "variance 0.01", i.e. 0.1: ``noise_std`` chooses) and rounding
to 2 decimals. The post's printed loop never appends the new amplitudes to
``random_walk`` (as printed it fails at i = 1); here every step's amplitudes
are used, which is what its text describes. With equal frequencies the two
"modes" add to one sinusoid of amplitude a_t,1 - a_t,0; ``frequencies``
gives them distinct ones.

Targets. The post trains the model to output "the future returns of buying or
selling the commodity at each time-step", computed with "Bellman's Q-Value
equation" (it cites a second post and gives neither the discount nor the
formula). We use the discounted future return of holding one unit from t on,

    r_{t+1} = p_{t+1} - p_t,   R_t = r_{t+1} + gamma R_{t+1},   R_{L-1} = 0,

i.e. R_t = sum_{k=0}^{L-2-t} gamma^k r_{t+k+1}, the Bellman (Q-value) recursion
of the "buy and hold" action with gamma = ``discount`` (our choice: 0.99, a
horizon of about 100 steps). Selling returns -R_t, so a single output carries
both.

Inputs: "the change in value from the previous 128 time steps, giving us 128
individual input features", read as x_{t,k} = p_t - p_{t-k}, k = 1..K (K =
``lags``), with p_j = p_0 for j < 0 so that every step has an input and the
series keeps its length. ``lag_features`` computes them (the problem computes
the same on the device, chunk by chunk, from the padded prices).
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class SeriesSpec:
  """The generator's settings; defaults are the post's code."""
  length: int = 20_000
  angle_step: float = 0.01            # theta_t - theta_{t-1} ~ angle_step * U(-1, 1)
  frequencies: tuple[float, float] = (0.0002, 0.0002)   # w_0, w_1 (rad per step)
  signs: tuple[float, float] = (-1.0, 1.0)              # s_0, s_1
  offset: float = 100.0
  noise_std: float = 0.01
  decimals: int | None = 2            # rounding of the prices; None = none


def amplitude_walk(rng: np.random.Generator, length: int, angle_step: float) -> np.ndarray:
  """Amplitudes a_t [length, 2] = (|cos theta_t|, |sin theta_t|) of the angle's random walk."""
  theta0 = rng.uniform(-np.pi, np.pi)
  steps = angle_step * rng.uniform(-1.0, 1.0, length - 1)
  theta = theta0 + np.concatenate([[0.0], np.cumsum(steps)])
  return np.abs(np.stack([np.cos(theta), np.sin(theta)], -1))


# The extra words of each split's seed: a validation or test series is drawn
# from a stream of its own, so it is the same whatever the number of training
# series (``series=15`` and ``series=30`` are scored on the same test set).
SPLIT_STREAMS = {'train': (), 'valid': (1,), 'test': (2,)}


def generate_series(seed: int, index: int, spec: SeriesSpec = SeriesSpec(), split: str = 'train'
                    ) -> tuple[np.ndarray, np.ndarray]:
  """Series ``index`` of ``split`` for seed ``seed``: (prices [L] float64, amplitudes [L, 2]).

  Each (seed, index, split) has its own ``np.random.default_rng``, so a
  series does not depend on how many others are drawn, in its split or another.
  """
  rng = np.random.default_rng([seed, index, *SPLIT_STREAMS[split]])
  amps = amplitude_walk(rng, spec.length, spec.angle_step)
  t = np.arange(spec.length, dtype=np.float64)
  clean = sum(s * amps[:, j] * np.sin(w * t)
              for j, (s, w) in enumerate(zip(spec.signs, spec.frequencies)))
  prices = clean + spec.offset + rng.normal(0.0, spec.noise_std, spec.length)
  if spec.decimals is not None:
    prices = np.round(prices, spec.decimals)
  return prices, amps


def discounted_returns(prices: np.ndarray, discount: float) -> np.ndarray:
  """R_t = (p_{t+1} - p_t) + discount * R_{t+1}, R_{L-1} = 0, along the last axis."""
  prices = np.asarray(prices, np.float64)
  out = np.zeros_like(prices)
  diffs = np.diff(prices, axis=-1)
  acc = np.zeros(prices.shape[:-1])
  for t in range(prices.shape[-1] - 2, -1, -1):
    acc = diffs[..., t] + discount * acc
    out[..., t] = acc
  return out


def lag_features(prices: np.ndarray, lags: int) -> np.ndarray:
  """x_{t,k} = p_t - p_{t-k} for k = 1..lags, p_j = p_0 for j < 0: [..., L, lags]."""
  prices = np.asarray(prices, np.float64)
  padded = np.concatenate([np.repeat(prices[..., :1], lags, -1), prices], -1)
  length = prices.shape[-1]
  return np.stack([prices - padded[..., lags - k:lags - k + length]
                   for k in range(1, lags + 1)], -1)


def make_splits(seed: int, num_train: int, num_valid: int, num_test: int,
                spec: SeriesSpec = SeriesSpec()) -> dict[str, np.ndarray]:
  """split -> prices [N, L]: series 0..N-1 of each split's own stream.

  The post trains on its 15 series and reports the training loss only; the
  validation and test series are further draws of the same process, the
  same ones whatever ``num_train``.
  """
  counts = {'train': num_train, 'valid': num_valid, 'test': num_test}
  return {split: np.stack([generate_series(seed, i, spec, split)[0] for i in range(n)])
          for split, n in counts.items()}
