"""What the two tools and the web page share: AWS sessions and clients, finding the
deployed stack, console output, and the error types the CLIs map to exit codes."""
