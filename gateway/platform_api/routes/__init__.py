"""The platform API's routes, one module per resource; `ROUTERS` in the order the API lists them."""

from __future__ import annotations

from gateway.platform_api.routes import ats, caps, collections, orders, stock

ROUTERS = (ats.router, orders.router, stock.router, caps.router, collections.router)
