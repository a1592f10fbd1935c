"""Seller and clerk JSON API under /v1."""
