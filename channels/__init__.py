"""Chat channels that patients reach: hardened REST (used by the widget and tests)."""
