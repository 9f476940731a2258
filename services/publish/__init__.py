"""Publishing: the website pipeline may publish only what the gate allows, and takedowns."""
