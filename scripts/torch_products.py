"""PyTorch's rate on the products of scripts/xla_threads.py, with N threads:

    <venv with torch>/bin/python scripts/torch_products.py N

Prints one JSON line of GFLOP/s (float32).
"""
import time, json, torch, sys
torch.set_num_threads(int(sys.argv[1]))
def gf(m, k, n, reps):
  a = torch.randn(m, k); b = torch.randn(k, n)
  a @ b
  ts = []
  for _ in range(5):
    t = time.perf_counter()
    for _ in range(reps): a @ b
    ts.append((time.perf_counter() - t) / reps)
  return round(2 * m * k * n / sorted(ts)[2] / 1e9, 1)
print(json.dumps(dict(torch_threads=int(sys.argv[1]), dot32x512x2048=gf(32, 512, 2048, 200), dot512x6400x2048=gf(512, 6400, 2048, 10), dot2048x2048x2048=gf(2048, 2048, 2048, 10))))
