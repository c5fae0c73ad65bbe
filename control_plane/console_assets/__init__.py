"""The operator console's assets (package data): the HTML shell, the stylesheet and the script."""
