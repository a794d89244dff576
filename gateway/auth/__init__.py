"""Patrons: PIN policy, patron directories, PIN hashing, lockouts."""
