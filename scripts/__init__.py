"""The benchmarks, one module each, built on the package's timing core (``core/latency``, ``app/timing``).

``python -m scripts`` lists them; ``python -m scripts NAME [options]`` runs one; each also runs as
``python scripts/<module>.py [options]``, the command the committed JSONs in docs/benchmarks record.
"""
