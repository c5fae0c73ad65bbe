"""Soundbox devices: models and capabilities, registry, credentials, presence,
heartbeats, topic ACL, uplink dispatch and the per-device MQTT trace.

Both the broker plugins (``plugins/``) and the HTTP routes
(``control_plane/devices.py``) call these modules; they hold the rules.
"""
