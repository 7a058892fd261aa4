"""What tenants may reach upstream beyond inference: the endpoint table and who owns what."""
