"""``imgsearch``: the operator's CLI (search, status, dlq, verify, get, delete, serve)."""
