"""Sessions stored by the original, sync-only manager (v0.9.x): reading them and moving them to our layout.

* :mod:`.layout` knows the original's document shape and decodes one into ours (pure functions).
* :mod:`.migrator` moves one session, in place or to another namespace, safely under crashes and
  concurrent writers.
* :mod:`.gate` is the one hook the core calls when a session document it loaded is in the old layout.
"""
