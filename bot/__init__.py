"""The runtime: Matrix transport, console backend, dispatcher, send queue, health server and CLI."""
