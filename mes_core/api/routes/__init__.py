"""API routers, one module per part of the domain (thin: the services decide)."""
