"""ConsentGate face engine: detection, encoding, open-set matching (see engine.py)."""
