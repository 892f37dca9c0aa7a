"""One run: the trainer and what it needs around it.

``train`` (``build(config) -> Trainer``, ``train_and_evaluate``), the
members of a population and the device mesh (``population``), several
hosts as one run (``distributed``), the run's records (``records``,
``events``) and ``errors.RunError``, the one-line error a user can fix.
Nothing here reads flags; ``launch.py`` calls in.
"""
