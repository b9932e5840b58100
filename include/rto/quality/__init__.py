"""Great Expectations checks at each step of the night (raw, staging, marts)."""
