"""errloop.telegraf."""
