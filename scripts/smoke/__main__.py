import sys

from scripts.smoke.cli import main

sys.exit(main())
