"""Latency benchmarks that print tables (``python -m dro_depth.bench`` runs them all; ``make bench``).

May import the core; never training or ros (the node-rate benchmark is :mod:`dro_depth.ros.bench`).
"""
