"""SNAP (Standar Nasional Open API Pembayaran, ASPI/Bank Indonesia) building blocks, SPEC §13–§14.

Pure pieces both directions share (the platform verifying an acquirer, an acquirer
or partner verifying the platform): no HTTP framework, no acquirer names.

- ``wire``: the body minified as sent, the strings to sign, HMAC-SHA512 and
  SHA256withRSA signing and verification (constant-time comparisons).
- ``timestamps``: ``X-TIMESTAMP`` parsing and the ±300 s window.
- ``codes``: response codes (HTTP status + service + case) and ``SnapError``.
- ``tokens``: B2B access tokens in PostgreSQL (hashed, 900 s, bound to a client).
- ``external_ids``: ``X-EXTERNAL-ID`` unique per partner per day.
"""
