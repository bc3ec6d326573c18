#!/usr/bin/env python3
"""CDK app entry (``cdk.json``: ``python3 app.py``); the app itself is in ``infra/app.py``."""

import sys

from infra.app import main

if __name__ == "__main__":
    sys.exit(main())
