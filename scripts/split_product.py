"""Can XLA run one step's recurrent product on two threads if we split it?
Times the gradient of a 100-step sigmoid RNN (B = 32, H = 300, the
``music_sigmoid_h300`` shape) with the work split three ways:

- ``columns``: the product h @ W as 1-4 independent products of column
  blocks of W, inside each step;
- ``rows``: the batch as 2 independent halves inside each step (two
  [16, 300] x [300, 300] products a step);
- ``scans``: the batch as 2 or 4 independent scans (no data flows between
  them, so a runtime that runs independent work side by side could).

    python scripts/split_product.py                 # XLA's defaults (both cores)
    taskset -c 0 python scripts/split_product.py    # one core

AMD EPYC VM, idle (the training runs SIGSTOPped), jaxlib 0.10, ms for one
forward and backward, median of 7 rounds of 10 (RESULTS.md, "Training speed"):

    2026-12-05 02:40, columns 1/2/3/4: two threads 19.0, 25.4, 28.6, 30.3;
                                       one core    26.8, 29.5, 30.2, 32.3
    2026-12-05 04:15, every variant, columns 1-4 / rows 2 / scans 2, 4:
                      two threads 19.4, 27.3, 29.0, 30.8 / 26.8 / 29.6, 43.0;
                      one core    25.0, 28.2, 29.3, 30.4 / 30.1 / 29.2, 42.3

Every split is slower: XLA:CPU neither spreads this product over threads
nor runs the independent pieces side by side.
"""
import sys
import time

import jax
import jax.numpy as jnp

B, H, T = 32, 300, 100


def step_fn(W, parts: int, how: str):
  Ws = jnp.split(W, parts, axis=1) if how == 'columns' and parts > 1 else [W]

  def step(h, x):
    if how == 'rows' and parts > 1:
      z = jnp.concatenate([hi @ W for hi in jnp.split(h, parts, axis=0)], axis=0)
    else:
      z = jnp.concatenate([h @ w for w in Ws], axis=1) if len(Ws) > 1 else h @ W
    h = jax.nn.sigmoid(x + z)
    return h, h
  return step


def loss(W, X, parts: int, how: str):
  if how == 'scans':
    xs = jnp.split(X, parts, axis=1)
  else:
    xs = [X]
  total = 0.
  for x in xs:
    _, hs = jax.lax.scan(step_fn(W, parts, how), jnp.zeros((x.shape[1], H)), x)
    total = total + jnp.sum(hs ** 2)
  return total


def time_ms(g, W, X) -> float:
  g(W, X).block_until_ready()
  ts = []
  for _ in range(7):
    t = time.perf_counter()
    for _ in range(10):
      r = g(W, X)
    r.block_until_ready()
    ts.append((time.perf_counter() - t) / 10)
  return sorted(ts)[3] * 1e3


def main():
  k = jax.random.split(jax.random.PRNGKey(0), 2)
  W = jax.random.normal(k[0], (H, H)) * 0.05
  X = jax.random.normal(k[1], (T, B, H))
  variants = [('columns', p) for p in (1, 2, 3, 4)] + [('rows', 2), ('scans', 2), ('scans', 4)]
  if len(sys.argv) > 1:
    variants = [v for v in variants if v[0] in sys.argv[1:]]
  for how, parts in variants:
    g = jax.jit(jax.grad(lambda W, X: loss(W, X, parts, how)))
    print(how, parts, 'ms', round(time_ms(g, W, X), 3), flush=True)


if __name__ == '__main__':
  main()
