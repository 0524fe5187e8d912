"""The rules of shared/DOMAIN.md: pure standard library, no I/O, no clock, no logging."""
