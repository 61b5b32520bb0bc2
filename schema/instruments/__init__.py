"""Survey instruments (e.g. the ACIC) and teams' scored responses."""
