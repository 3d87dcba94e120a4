"""Every smoke check in one namespace, for suites that run the smoke suite as one of their steps
(checks/post_deploy, checks/post_maintenance): `from smoke.suite import *`. Not collected itself (not test_*.py)."""

from smoke.test_http import test_health, test_latency, test_ready
from smoke.test_monitoring import (
    test_alert_receivers_exist,
    test_alert_rules_loaded,
    test_alertmanager_ready,
    test_no_severe_alert_firing,
    test_prometheus_ready,
    test_scrape_targets_up,
)
from smoke.test_postgres import (
    test_accepting_connections,
    test_cache_hit_ratio,
    test_connections_below_ceiling,
    test_no_long_running_queries,
    test_replica_lag,
    test_required_extensions,
    test_row_level_security,
)
from smoke.test_redis import (
    test_eviction_policy,
    test_keyspace_hit_rate,
    test_memory_below_ceiling,
    test_ping,
    test_queue_lengths,
)
from smoke.test_tls import test_certificate_not_expiring, test_certificate_trusted_for_hostname

__all__ = [
    "test_accepting_connections", "test_alert_receivers_exist", "test_alert_rules_loaded", "test_alertmanager_ready",
    "test_cache_hit_ratio", "test_certificate_not_expiring", "test_certificate_trusted_for_hostname",
    "test_connections_below_ceiling", "test_eviction_policy", "test_health", "test_keyspace_hit_rate",
    "test_latency", "test_memory_below_ceiling", "test_no_long_running_queries", "test_no_severe_alert_firing",
    "test_ping", "test_prometheus_ready", "test_queue_lengths", "test_ready", "test_replica_lag",
    "test_required_extensions", "test_row_level_security", "test_scrape_targets_up",
]
