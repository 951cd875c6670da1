"""The ASGI app: create_app(settings), middleware, request authentication, error rendering."""
