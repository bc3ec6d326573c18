import sys

from scripts.backfill.cli import main

sys.exit(main())
