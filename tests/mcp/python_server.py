"""An MCP server built with the official Python SDK (`mcp`), for the suite.

Usage: python_server.py PORT [stateless]

Serves streamable HTTP on 127.0.0.1:PORT at /mcp, with a session per client unless
`stateless` is given. Tools: `add` (two integers), `shout` (upper-cases `text`),
`noop` (does nothing), `fail` (always raises).
"""

import sys

from mcp.server.mcpserver import MCPServer

server = MCPServer(name="pytools", version="2.3.0", instructions="Small tools in Python")


@server.tool()
def add(a: int, b: int) -> int:
    """Adds two integers."""
    return a + b


@server.tool()
def shout(text: str = "", q: str = "") -> str:
    """Upper-cases the text."""
    return (text or q).upper()


@server.tool()
def noop() -> str:
    """Does nothing (for benchmarks)."""
    return ""


@server.tool()
def fail() -> str:
    """Always fails."""
    raise ValueError("this tool always fails")


if __name__ == "__main__":
    port = int(sys.argv[1])
    stateless = len(sys.argv) > 2 and sys.argv[2] == "stateless"
    server.run(
        "streamable-http",
        host="127.0.0.1",
        port=port,
        streamable_http_path="/mcp",
        stateless_http=stateless,
    )
