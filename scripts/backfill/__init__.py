"""``imgsearch-backfill``: enqueue every existing image of an S3 Inventory report, resumably."""
