"""The HTTP shell: intake endpoints, the REST API, health. Thin: every route calls a service."""
