"""Operations as a library: status, dlq, verify, deletion, the failure log.

No argparse and no printing: the CLI and the web page call these and present the results.
Searches and their filters are the core's: :mod:`imgsearch.search`, ``imgsearch.search_filters``.
"""
