"""The rules of docs/rules.md: pure standard library, no I/O, no clock, no logging."""
