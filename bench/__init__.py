"""Benchmarks, each run by a command (see README) and printing figures beside a bare baseline."""
