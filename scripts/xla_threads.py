"""How many cores do XLA's CPU products use, and at what rate? Prints one JSON
line: GFLOP/s of four float32 products (the B = 32 LSTM's step product
[32, 512] x [512, 2048], its two weight-gradient products over 200 steps, and
a large square one), and a 200-step recurrence of that shape forward
(steps/ms) and with its gradient (ms).

    python scripts/xla_threads.py                           # XLA's defaults
    XLA_FLAGS='--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1' \
        python scripts/xla_threads.py                       # the "single-thread" flags
    taskset -c 0 python scripts/xla_threads.py              # one core

On jaxlib 0.10 (an idle 2-core Intel Xeon VM, 2026-12-04) the flags change
nothing that matters: the products still run on both cores; only the
affinity (taskset, or ``os.sched_setaffinity`` before JAX starts, as the
sweep workers do) limits JAX to one core. RESULTS.md, "Training speed".
"""
import os, time, json, sys
import jax, jax.numpy as jnp

def timeit(f, *a, n=20):
  f(*a).block_until_ready()
  ts = []
  for _ in range(5):
    t = time.perf_counter()
    for _ in range(n):
      r = f(*a)
    r.block_until_ready()
    ts.append((time.perf_counter() - t) / n)
  return sorted(ts)[2]

k = jax.random.PRNGKey(0)
out = {}
for (m, kk, n) in [(32, 512, 2048), (512, 6400, 2048), (6400, 2048, 512), (2048, 2048, 2048)]:
  a = jax.random.normal(k, (m, kk)); b = jax.random.normal(k, (kk, n))
  f = jax.jit(lambda a, b: a @ b)
  t = timeit(f, a, b, n=200 if m * kk * n < 1e8 else 10)
  out[f'dot{m}x{kk}x{n}'] = round(2 * m * kk * n / t / 1e9, 1)
# a scan of 200 steps of h = tanh(x_t + h W), B=32, H=512x2048 gates
W = jax.random.normal(k, (512, 2048)) * 0.02
xs = jax.random.normal(k, (200, 32, 2048))
def scan(W, xs):
  def step(h, x):
    g = x + h @ W
    i, f_, o, c = jnp.split(g, 4, -1)
    h = jax.nn.sigmoid(o) * jnp.tanh(jax.nn.sigmoid(i) * jnp.tanh(c))
    return h, h
  return jax.lax.scan(step, jnp.zeros((32, 512)), xs)[1]
f = jax.jit(scan)
t = timeit(f, W, xs, n=5)
out['scan200_steps_per_ms'] = round(200 / t / 1e3, 2)
g = jax.jit(jax.grad(lambda W, xs: scan(W, xs).sum()))
t = timeit(g, W, xs, n=3)
out['scan200_grad_ms'] = round(t * 1e3, 1)
print(json.dumps(dict(flags=os.environ.get('XLA_FLAGS', ''), **out)))
