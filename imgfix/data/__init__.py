"""Training data preparation."""
