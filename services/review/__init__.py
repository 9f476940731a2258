"""SLT scrutiny: the queue of blocked media, and approvals with written justification."""
