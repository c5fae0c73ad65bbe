"""The payment spine: transactions, acquirer callbacks, ledger, dynamic QR."""
