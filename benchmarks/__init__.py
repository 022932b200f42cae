"""The benchmark harness: the runtime measured against its baselines and limits.

Run it as ``liveupload bench [SCENARIO...] [--quick|--full] [--out DIR]`` or
``python -m benchmarks``. Scenarios (``benchmarks.scenarios``): ``channels``
(uploads through UploadChannels beside a direct-call, a plain-file and a
plain-Pykka baseline, scaled over U), ``spawn`` (cost and limit of starting
processes, and whether it stays flat as their number grows), ``blocking``
(writers that block, beside a bystander process whose ask latency is
watched), ``crash`` (crash-to-cleanup latency, writers closed exactly once)
and ``server`` (end to end over loopback WebSockets, clients in other OS
processes, with the server loop's lag). Every
ratio comes from one run on one machine, described in the JSON beside the
figures. The substrate processes run on is a parameter
(``benchmarks.substrates``).
"""
