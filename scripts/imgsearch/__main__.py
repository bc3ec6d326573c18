import sys

from scripts.imgsearch.cli import main

sys.exit(main())
