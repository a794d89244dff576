"""Escaped hosts: what a database's pages reached outside the rules, for librarians to add.

``reports`` reads what browsers send (CSP reports, the companion's beacons) and the Report-Only
policy that makes them send it; ``lines`` writes the ``HJ`` line into a rule file's text (both
pure); ``store`` counts them in Redis.
"""
