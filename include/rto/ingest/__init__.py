"""Nightly pull: discover new source files, land them immutably, load them into raw tables."""
