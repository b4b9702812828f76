"""cba layer of smartnet_gym."""
