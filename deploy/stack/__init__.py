"""The local TICK stack errloop tests and demos run against: build, start, stop."""
