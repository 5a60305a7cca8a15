"""aiomero's benchmarks: aiomero side by side with the ways it replaces.

Run them all with ``./dev bench`` (``python -m benchmarks``); ``--quick``
runs every scenario at a tiny size, ``--only NAME`` one scenario, ``--out
DIR`` writes elsewhere than this directory. The results go to
``RESULTS.md`` (tables, with the machine and the goals) and
``results.json`` (the raw figures).

Every scenario runs the OMERO emulator in a child process
(:class:`aiomero.testing.EmulatorProcess`) with an injected latency, so the
server's work never shares the client's interpreter lock:

- ``overhead`` (:mod:`benchmarks.overhead`): the cost of one call through
  ``AsyncGateway`` over the same call on ``BlitzGateway``, and the floor a
  thread hop sets;
- ``concurrency`` and ``loop-lag`` (:mod:`benchmarks.concurrency`): many
  callers at once, and how late the event loop runs meanwhile;
- ``sessions`` (:mod:`benchmarks.sessions`): memory and threads per pooled
  session, and the time to open a pool;
- ``crawl`` (:mod:`benchmarks.crawl`): a whole IDR-shaped server, walked as
  users write it and crawled by ``aiomero crawl``.

Two tools stand apart: ``benchmarks/emulator_roundtrip.py`` measures the
emulator alone, and ``python -m benchmarks.soak`` runs a pool under random
faults for a while.
"""
