"""The consent lifecycle: telling the publishing pipeline about takedowns, the periodic
consent re-check, retention purge with legal holds, and subject access."""
