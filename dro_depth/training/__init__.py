"""Training: one loop and run-config base (:mod:`.loop`), the losses, and one recipe per model kind
(:mod:`.dro`, :mod:`.metric`, ...). :mod:`dro_depth.cli` picks the recipe; no recipe imports another.

May import everything in the core (data, models, geometry, sfm, metric) and evaluation; nothing imports it
but the CLI.
"""
