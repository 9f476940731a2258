"""The upload gateway: every photo and video enters here, and leaves queued for screening."""
