"""Merchants, their outlets and terminals: onboarding states and QRIS identity."""
