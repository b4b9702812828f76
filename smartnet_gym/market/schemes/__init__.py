"""schemes layer of smartnet_gym."""
