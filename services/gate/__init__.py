"""The publication gate: may this medium go to this channel, now? Fails closed."""
