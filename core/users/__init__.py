"""Platform (admin) and merchant users, passwords and login tokens."""
