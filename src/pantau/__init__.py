"""Pantau Pangan shared package."""
