"""The API reference page (GET /docs), rendered from the OpenAPI schema."""
