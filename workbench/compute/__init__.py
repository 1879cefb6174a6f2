"""Compute that belongs to requests: server sessions, their GPU/CPU-hour use, and the reaper
that ends servers of ended, idle or over-budget requests (scale to zero)."""
