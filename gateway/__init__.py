"""stock-gateway: takes in partners' stock files, applies them, pushes out available-to-sell."""

__version__ = "0.1.0"
