"""The ``liveupload`` command line: one module per subcommand
(``serve``, ``send``, ``demo``), assembled by :mod:`cli.main`; ``bench`` and
``crashtest`` are the benchmark harness's own, imported only when run."""
