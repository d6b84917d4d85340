"""egress lockdown: network controls that leave developers and CI no way to a model provider but
through the gateway, generated from the configured endpoints and the provider catalog, and the
check that proves them."""
