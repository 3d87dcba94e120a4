"""Neutral helpers every part of opsproof may use — deadline polls, durations, the reason of an exception,
processes and atomic writes. Nothing here imports anything of opsproof (tests/test_layering.py checks it)."""
