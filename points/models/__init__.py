"""Points: earning (rules, tiers, tasks), spending (catalog, vouchers, exchange, lotteries)
and the scheduled jobs (airdrop, expiry). One module per area; all models are exported here
so Django and migrations see them as ``points.<Model>``."""

from .earning import *  # noqa: F403
from .jobs import *  # noqa: F403
from .spending import *  # noqa: F403
from .tasks import *  # noqa: F403
