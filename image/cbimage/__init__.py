"""Commonsbox's OS image builder: board profiles, one root file system recipe, disk layout.

    python -m cbimage build --board qemu-amd64 --out DIR [--test] [--cache DIR]

Named ``cbimage`` so it can never shadow PyPI's ``image`` package.
"""
