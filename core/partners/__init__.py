"""Cashier and POS partners (SPEC §14): the registry, the SNAP services they call, and the signed
notifications the platform sends back to them."""
