"""What the agent and the backend share without depending on each other: config parsing and log set-up."""
