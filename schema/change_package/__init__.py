"""Change packages: a collaborative's change concepts (tagged with Care Model domains) and ideas."""
