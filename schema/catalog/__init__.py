"""The resource catalog: tools, change concepts and ideas, stories, trainings, conferences."""
