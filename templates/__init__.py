"""errloop.templates."""
