"""Carrel: an open-source, EZproxy-style database access gateway for libraries."""

__version__ = "0.1.0"
