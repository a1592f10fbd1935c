"""Seller webhooks: SSRF guard, Standard Webhooks signing, delivery and retry policy."""
