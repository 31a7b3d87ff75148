"""Shared code for the ziglora pipeline stages (scripts/*.py, train_lora.py, evaluate)."""
