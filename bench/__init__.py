"""Benchmarks and calibration of the face engine; see bench/README.md. Not shipped."""
