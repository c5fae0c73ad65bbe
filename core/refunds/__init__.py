"""Refunds of paid payments: asked for, approved, carried out, written to the ledger (docs/finance.md)."""
