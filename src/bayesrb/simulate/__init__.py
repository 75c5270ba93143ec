"""Survey simulator: the embedded default input, written exactly as a telescope pipeline would."""
