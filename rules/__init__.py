"""errloop.rules."""
