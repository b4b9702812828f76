"""envs layer of smartnet_gym."""
