"""errloop.deploy."""
