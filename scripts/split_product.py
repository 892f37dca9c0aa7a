"""Does splitting a step's recurrent product into column blocks let XLA run the
blocks on two threads side by side? Times the gradient of a 100-step sigmoid
RNN (B = 32, H = 300, the ``music_sigmoid_h300`` shape) with the product
h @ W as 1, 2, 3 or 4 independent products of column blocks.

    python scripts/split_product.py                 # XLA's defaults (both cores)
    taskset -c 0 python scripts/split_product.py    # one core

AMD EPYC VM, idle, jaxlib 0.10 (2026-12-05): 19.0, 25.4, 28.6, 30.3 ms on two
threads; 26.8, 29.5, 30.2, 32.3 ms on one core: the split is slower
(RESULTS.md, "Training speed").
"""
import time, sys, jax, jax.numpy as jnp
B, H, T = 32, 300, 100
k = jax.random.split(jax.random.PRNGKey(0), 3)
W = jax.random.normal(k[0], (H, H)) * 0.05
X = jax.random.normal(k[1], (T, B, H))
def run(W, X, parts):
  Ws = jnp.split(W, parts, axis=1) if parts > 1 else [W]
  def step(h, x):
    z = jnp.concatenate([h @ w for w in Ws], axis=1) if parts > 1 else h @ W
    h = jax.nn.sigmoid(x + z)
    return h, h
  _, hs = jax.lax.scan(step, jnp.zeros((B, H)), X)
  return jnp.sum(hs ** 2)
for parts in (1, 2, 3, 4):
  g = jax.jit(jax.grad(run), static_argnums=2)
  g(W, X, parts).block_until_ready()
  ts = []
  for _ in range(7):
    t = time.perf_counter()
    for _ in range(10): r = g(W, X, parts)
    r.block_until_ready(); ts.append((time.perf_counter() - t) / 10)
  print(parts, 'ms', round(sorted(ts)[3] * 1e3, 3), flush=True)
