"""Publication of the serving files and the per-run reports."""
