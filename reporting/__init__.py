"""Finished runs read back: the papers' tables beside our numbers
(``tables``, ``launch.py table``) and the figures (``figures``)."""
