"""Load tests as SLO gates: Locust in a subprocess (importing it monkey-patches the process with gevent), an
event-hook plugin that records every response time exactly (HdrHistogram, µs), and k6-style thresholds.

``runner`` builds the locustfile from the inventory and runs Locust; ``locust_plugin`` and ``users`` are loaded
by Locust only, never by opsproof's own process; ``thresholds`` and ``histogram`` are plain code."""
