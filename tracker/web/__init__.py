"""HTTP surface: seller/clerk JSON API, public pages, ops endpoints."""
