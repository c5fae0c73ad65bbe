"""Tests of the project's broker (PlatformBroker over amqtt 0.12.1)."""
