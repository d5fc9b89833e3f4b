"""The decision log served over MCP; `server.server` is what MCP_SERVER names."""
