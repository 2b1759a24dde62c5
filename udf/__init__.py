"""errloop.udf: errloop's Kapacitor UDF runtime (``agent``) and its UDFs (``classify``, ``mirror``).

Run one with ``errloop udf NAME`` or ``python -m errloop.udf NAME``; see ``registry``.
"""
