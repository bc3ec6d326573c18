"""Operations as a library: search, status, dlq, verify, deletion and filters.

No argparse and no printing: the CLI and the web page call these and present the results.
"""
