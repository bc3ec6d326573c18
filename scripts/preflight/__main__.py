import sys

from scripts.preflight.cli import main

sys.exit(main())
