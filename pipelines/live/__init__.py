"""The live demo: the whole pipeline running on the simulator, watched in the terminal."""
