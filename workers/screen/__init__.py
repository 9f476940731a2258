"""Screening: find every face in a medium and match it against the consent register."""
