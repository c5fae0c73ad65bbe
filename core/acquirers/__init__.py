"""The acquirer registry (SPEC §13): who sends the platform payments, in which protocol, with which keys."""
