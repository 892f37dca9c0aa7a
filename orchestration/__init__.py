"""Many runs: ``sweep`` (grids and random search, ``launch.py sweep``), the
engines that run a sweep's parts (``executors``: local processes, Ray,
Slurm) and ``reproduce`` (a paper table end to end, ``launch.py
reproduce``). Each run is ``training.train.train_and_evaluate``.
"""
