"""errloop.udf."""
