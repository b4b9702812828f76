"""simulation layer of smartnet_gym."""
