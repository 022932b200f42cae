"""The benchmark harness: the runtime measured against its baselines and limits.

Run it as ``liveupload bench [SCENARIO...] [--quick|--full] [--out DIR]`` or
``python -m benchmarks``. Scenarios (``benchmarks.scenarios``): ``channels``
(uploads through UploadChannels beside a direct-call, a plain-file and a
plain-Pykka baseline, scaled over U), ``spawn`` (cost and limit of starting
processes), ``crash`` (crash-to-cleanup latency, writers closed exactly once)
and ``server`` (end to end; a hook until the server serves uploads). Every
ratio comes from one run on one machine, described in the JSON beside the
figures. The substrate processes run on is a parameter
(``benchmarks.substrates``).
"""
