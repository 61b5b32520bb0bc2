"""The measures domain: measures, their versioned definitions and collaboratives' measure sets."""
