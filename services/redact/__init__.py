"""Redacted copies: faces without consent for a channel, blurred beyond recognition."""
