"""Deployment: the Traefik configuration generator, the local cluster, and (beside it) Docker Compose."""
