"""HTTP routes of environments: caches, the images kilod built, disk and garbage collection.

The CLI (`kilod cache`, `kilod images list|prune`, `kilod ctl gc`, `kilod doctor`)
asks the daemon here, so it never loads the docker SDK. Errors are KilodErrors: the
app's middleware turns them into JSON with a status.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from pathlib import Path

from aiohttp import web

from kilod.environments.attach import Environments
from kilod.errors import Invalid


class EnvironmentRoutes:
    def __init__(self, environments: Environments) -> None:
        self.environments = environments

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/v1/caches", self.list_caches),
            web.delete("/v1/caches", self.clear_caches),
            web.get("/v1/images", self.list_images),
            web.delete("/v1/images", self.prune_images),
        ]

    async def list_caches(self, request: web.Request) -> web.Response:
        caches = await asyncio.to_thread(self.environments.caches.inventory)
        known = [c.size_bytes for c in caches if c.size_bytes is not None]
        return web.json_response({"caches": [asdict(c) for c in caches], "total_bytes": sum(known)})

    async def clear_caches(self, request: web.Request) -> web.Response:
        repo = request.query.get("repo")
        if repo is not None:
            if not repo.strip():
                raise Invalid("repo is empty; give a repository path or leave it out to clear every cache",
                              field="repo")
            repo = str(Path(repo).expanduser().resolve())
        removed, in_use = await asyncio.to_thread(self.environments.caches.clear, repo)
        return web.json_response({"removed": removed, "in_use": in_use})

    async def list_images(self, request: web.Request) -> web.Response:
        images = await asyncio.to_thread(self.environments.images.inventory)
        return web.json_response({"images": [asdict(i) for i in images]})

    async def prune_images(self, request: web.Request) -> web.Response:
        removed, in_use = await asyncio.to_thread(self.environments.images.prune)
        return web.json_response({"removed": removed, "in_use": in_use})
