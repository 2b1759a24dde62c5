"""errloop serve: records actions for Kapacitor alerts, writes the closed-loop CSV, answers traces.

Modules: ``model`` (alert JSON -> events, ids, times), ``actions`` (action points, CSV rows),
``ledger`` (dedupe), ``csvlog``, ``influx`` (InfluxDB edge), ``recorder``, ``catchup``
(the second path through ``errloop_alerts``), ``trace`` (``errloop trace``), ``webhook``,
``app`` (HTTP server, ``Server``, ``main``). See README.md.
"""
