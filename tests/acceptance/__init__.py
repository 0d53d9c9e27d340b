"""Acceptance tests: each user-facing promise proved through the running daemon."""
