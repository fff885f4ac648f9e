"""Test support over a whole platform: the running-platform fixtures, helpers for the services'
API tests, and `authpi up` as a subprocess."""
