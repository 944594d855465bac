"""Transport middleware (only retries are provided by the stand-in)."""
