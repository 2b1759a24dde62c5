"""``python -m errloop.deploy.demo``: build the demo service and print the binary's path."""

import sys

from errloop.deploy.demo import main

sys.exit(main())
