"""What the pipeline must do with an order under the default rules, worked out here from
the README's rules, not by the code under test (orders_tui.domain.rules):

- price > 1000.00, or not a finite number: dead-lettered at once (permanent);
- 5.00 <= price <= 50.00: the first k attempts fail, k = 1 + (BLAKE2b-64 of the order
  id, big-endian) mod 4; with 3 retries (4 attempts), k = 4 exhausts them: dead-lettered;
- anything else: processed at once.
"""

from __future__ import annotations

import hashlib
import math

ATTEMPTS = 4  # 1 + the default 3 retries


def failing_attempts(order_id: str) -> int:
    digest = hashlib.blake2b(order_id.encode(), digest_size=8).digest()
    return 1 + int.from_bytes(digest, "big") % ATTEMPTS


def dead_lettered(order) -> bool:
    price = order.price
    if not math.isfinite(price) or price > 1000.0:
        return True
    return 5.0 <= price <= 50.0 and failing_attempts(order.orderId) == ATTEMPTS


def transient(order) -> bool:
    return 5.0 <= order.price <= 50.0
