"""Pure quality-improvement statistics: periods, run and control charts, suppression."""
