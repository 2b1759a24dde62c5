"""``python -m errloop.telegraf.errlog --config FILE``."""

import sys

from errloop.telegraf.errlog.plugin import cli

sys.exit(cli())
