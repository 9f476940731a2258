"""Photography sessions: SLT's prior approval of who photographs what, when, on what."""
