"""Losses and gradient terms shared by search strategies and retraining."""
