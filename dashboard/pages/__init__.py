"""Dashboard pages, one file per page."""
