"""``make smoke``: one end-to-end acceptance test for the local cloud and a real account."""
