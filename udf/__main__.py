"""``python -m errloop.udf NAME [--socket PATH]``: how kapacitor.conf starts an errloop UDF."""

from __future__ import annotations

import argparse
import sys

from errloop.udf import registry


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and serve the named UDF."""
    parser = argparse.ArgumentParser(prog="python -m errloop.udf", description="Run an errloop Kapacitor UDF.")
    parser.add_argument("name", choices=registry.NAMES, help="the UDF to run")
    parser.add_argument("--socket", metavar="PATH", help="serve on this Unix socket instead of stdin/stdout")
    args = parser.parse_args(argv)
    return registry.main(args.name, args.socket)


if __name__ == "__main__":
    sys.exit(main())
