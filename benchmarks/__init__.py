"""Training-speed benchmarks of rnnopt (``python launch.py bench``).

``workloads`` defines the workloads as experiment configs with the PyTorch
peer's shapes (``../shared/bench``), their synthetic data and the trainer's
compiled chunk that is timed; ``run`` times them, optionally alternating
with the peer, and prints one JSON line per workload; ``roofline`` bounds
how fast their matrix products could run on this machine.
"""
