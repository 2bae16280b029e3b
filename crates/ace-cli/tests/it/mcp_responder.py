"""A responder written with the Python SDK (ace_comms), as the tour's agent: answers every
query on `ace.comms.a2a.agent.{name}.cmd.query.v1` with {"answer": 42, "asked": payload} on the
query's reply inbox. Prints `ready` once subscribed, then serves until killed.

Usage: mcp_responder.py URL API_KEY NAME
"""

import asyncio
import sys

from ace_comms import AsyncClient


async def main(url: str, key: str, name: str) -> None:
    async with AsyncClient(url, api_key=key) as client:
        queries = await client.subscribe(f"ace.comms.a2a.agent.{name}.cmd.query.v1")
        print("ready", flush=True)
        async for query in queries:
            await query.reply({"answer": 42, "asked": query.envelope.payload})


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
