"""The ASGI edge: the request pipeline, the upstream proxy, forward-auth and HTTP error mapping."""
