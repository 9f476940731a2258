"""All queries live here; services call repositories and never build SQL themselves."""
