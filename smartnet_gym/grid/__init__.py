"""grid layer of smartnet_gym."""
