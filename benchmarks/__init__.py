"""Benchmarks of mongodb-session-manager: ``python -m benchmarks [--quick] [--only NAME] [--json PATH]``.

Every figure comes with the number of MongoDB commands (round trips, counted with a PyMongo
``CommandListener``) and, for times, the median and p95 over repeats and a ratio against a
baseline measured in the same run. See ``docs/benchmarks.md``.
"""
