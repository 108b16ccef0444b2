"""The benchmarks: the ``netquality bench`` harness (:mod:`benchmarks.harness`) and the scripts
that measure one part each (engine, drain, sink, analytics; see benchmarks/README.md).

Shipped with the distribution so that an installed ``netquality bench`` finds its harness."""
