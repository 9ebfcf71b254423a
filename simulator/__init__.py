"""Discrete-event simulation of delivery days around the dispatch engine."""
