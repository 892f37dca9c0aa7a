"""Training-speed benchmarks of rnnopt (``python launch.py bench``).

``workloads`` defines the five synthetic workloads (the same models, batch
sizes and lengths as the PyTorch peer in ``../shared/bench``) and their
compiled training chunks; ``run`` times them, optionally alternating with
the peer, and prints one JSON line per workload.
"""
