"""Typed settings, parsed and checked once at start, and the packaged reference data and mail templates.

At the bottom of the layers beside ``domain``: everything may read it, it reads nothing of the project but
``domain``.
"""
