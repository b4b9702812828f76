"""data layer of smartnet_gym."""
