"""Streaming readers of the partners' flat files."""
