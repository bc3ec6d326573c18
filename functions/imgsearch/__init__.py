"""Image-search ingestion pipeline: the code that runs in the Lambdas and the scripts."""
