"""CollabX's benchmark: the service beside the raw-SQL floor, on the same data, in the same run.

Not part of the installed service (it may import ``db``, ``api`` and ``analytics``). Modules:

- :mod:`bench.generate` — a deterministic dataset at a scale, loaded through the project's own
  migrations and models, plus one ADMIN client per sponsor.
- :mod:`bench.floor` — every question answered by hand-written SQL through asyncpg.
- :mod:`bench.api` — the same questions as a client of the real HTTP API asks them.
- :mod:`bench.server` — a real ``collabx serve`` process (production settings) and its RSS/CPU.
- :mod:`bench.driver` — verification, the closed-loop load at fixed concurrency, the report.
- :mod:`bench.profile` — a py-spy profile of the API process, summarised by layer.

Run ``make bench`` (scale 1) or ``make bench-quick`` (under 3 minutes), or ``python -m bench``.
"""
