"""market layer of smartnet_gym."""
