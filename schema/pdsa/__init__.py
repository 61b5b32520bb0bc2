"""PDSA cycles: the tests of change teams run, and their marks on measure series."""
