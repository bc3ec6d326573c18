"""``make preflight``: before a deploy, what would fail in this account and which setting fixes it.

``checks`` holds the checks (a library: no argparse, no print), ``cli`` the command.
"""
