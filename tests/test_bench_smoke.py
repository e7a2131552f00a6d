"""The benchmarks still run and their invariants hold, at tiny sizes.

Timings are not asserted: the figures live in docs/benchmarks.md. Each bench
wipes the (test) database, starts threads, and the HTTP ones a gunicorn server
on the test database, hence a transactional test on PostgreSQL.
"""

import pytest

from bench import aftersales as aftersales_bench
from bench import dashboard as dashboard_bench
from bench import expiry, hot_sku, ingest, order_create, pos_feed

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db(transaction=True)]


def test_hot_sku_sells_exactly_the_stock_through_service_and_http():
    result = hot_sku.main(["--stock", "5", "--threads", "2", "--processes", "2", "--baseline-stock", "10",
                           "--reference-threads", "4", "--reference-stock", "6",
                           "--single-stock", "3", "--http-workers", "1", "--http-threads", "2",
                           "--http-warmup", "4"])

    assert result["baseline"]["tx"] == 10
    assert result["reference_baseline"]["tx"] == 10
    assert result["service"]["layout"] == "2 processes x 1 threads"
    assert result["reference"]["layout"] == "2 processes x 2 threads"
    for phase, units in (("service", 5), ("reference", 6), ("service_one_process", 5), ("service_1_buyer", 3),
                         ("http", 5), ("http warm-up", 4)):
        outcome = result["http"]["warmup"] if phase == "http warm-up" else result[phase]
        assert outcome["succeeded"] == units, phase
        assert outcome["orders_in_db"] == units, phase
        assert outcome["deductions"] == units, phase
        assert outcome["stock_after"] == 0, phase
        assert outcome["oversold"] == 0, phase
        assert outcome["ledger_mismatches"] == [], phase
        assert outcome["errors"] == [], phase
    assert result["ok"] is True


def test_order_create_answers_every_request_and_counts_queries():
    result = order_create.main(["--seconds", "1", "--warmup", "0", "--clients", "2",
                                "--http-workers", "1", "--http-threads", "2"])

    assert result["orders"]["error_count"] == 0
    assert result["baseline"]["error_count"] == 0
    assert result["orders"]["requests"] > 0
    assert result["orders_made"] == result["idempotency_records"] == result["orders"]["requests"]
    assert result["query_counts"][1] == result["query_counts"][20]
    assert result["ok"] is True


def test_expiry_cancels_every_expired_order_and_gives_the_stock_back():
    result = expiry.main(["--orders", "50", "--baseline-orders", "20", "--batch-size", "7"])

    assert result["service"]["cancelled"] == 50
    assert result["service_state"] == {"cancelled": 50, "pending": 0, "releases": 50, "restored": True}
    assert result["baseline"]["cancelled"] == 20
    assert result["baseline_state"] == {"cancelled": 20, "pending": 0, "releases": 20, "restored": True}
    assert result["ledger_mismatches"] == []
    assert result["ok"] is True


def test_ingest_pulls_every_simulator_order_once_and_keeps_the_ledger():
    # relay and pos_e2e are not run here: they need Redis and real Celery processes
    # (python -m bench relay, python -m bench pos_e2e).
    result = ingest.main(["--orders", "30", "--repull", "10", "--pushes", "20", "--push-clients", "4",
                          "--http-workers", "1", "--http-threads", "4"])

    assert result["baseline"]["fetched"] == 30
    assert (result["ingest"]["pulled"], result["ingest"]["created"], result["ingest"]["error_count"]) == (30, 30, 0)
    assert (result["push"]["pushed"], result["push"]["failure_count"]) == (20, 0)
    assert (result["push"]["repushed"], result["push"]["repush_failures"]) == (10, 0)
    assert result["orders_in_db"] == 50  # 30 pulled + 20 pushed; pushed again: none new
    assert result["duplicates"] == []
    assert result["ids_match"] is True
    assert (result["reingested"], result["reingest_created"]) == (10, 0)
    assert result["order_movements"] == result["order_sku_pairs"]
    assert result["ledger_mismatches"] == []
    assert result["ok"] is True


def test_pos_feed_answers_every_poll_with_the_right_events_in_constant_queries():
    # Embedded mode (no Redis): the smoke test needs no Redis server.
    result = pos_feed.main(["--seconds", "1", "--rounds", "2", "--warmup", "0", "--clients", "2", "--acked", "3",
                            "--http-workers", "1", "--http-threads", "2", "--redis-url", ""])

    for phase in ("baseline", "idle", "new5"):
        assert result[phase]["error_count"] == 0, phase
        assert result[phase]["requests"] > 0, phase
    assert result["wrong_answers"] == 0
    assert result["still_unacked"] == 5
    assert result["query_counts"][1] == result["query_counts"][5] == result["query_counts"][20]
    assert result["query_counts"][0] <= result["query_counts"][5]
    assert result["ok"] is True


def test_aftersales_approves_every_request_once_beside_the_raw_sql_loop_in_constant_queries():
    result = aftersales_bench.main(["--requests", "12", "--baseline-requests", "8", "--lines", "2"])

    assert result["service"]["approved"] == 12
    assert result["service_state"] == {"statuses": {"refunded": 12}, "approve_rows": 12,
                                       "refund_states": {"partial": 12}, "order_statuses": {"picked_up": 12},
                                       "amount_mismatches": 0, "expected_state": "partial",
                                       "expected_order_status": "picked_up"}
    assert result["baseline"]["approved"] == 8
    assert result["baseline_state"]["statuses"] == {"refunded": 8}
    assert result["baseline_state"]["amount_mismatches"] == 0
    assert result["query_counts"]["lines"][1] == result["query_counts"]["lines"][20]
    assert result["query_counts"]["order"][1] == result["query_counts"]["order"][20]
    assert result["ratio"] > 0
    assert result["ok"] is True


def test_aftersales_whole_order_refunds_leave_every_order_refunded_in_full():
    result = aftersales_bench.main(["--requests", "5", "--baseline-requests", "5", "--scope", "order"])

    assert result["service_state"]["statuses"] == {"refunded": 5}
    assert result["service_state"]["refund_states"] == {"full": 5}
    assert result["service_state"]["order_statuses"] == {"refunded": 5}
    assert result["baseline_state"]["refund_states"] == {"full": 5}
    assert result["baseline_state"]["order_statuses"] == {"refunded": 5}
    assert result["ok"] is True


def test_dashboard_renders_in_equal_queries_and_equal_figures_with_more_orders():
    result = dashboard_bench.main(["--small", "20", "--large", "300", "--stores", "2", "--days", "10",
                                   "--requests", "1"])

    assert set(result["ratios"]) == {"today, brand", "30 days, brand", "10 days, brand", "30 days, one store"}
    for phase in ("small", "large"):
        for view in result["phases"][phase]["views"].values():
            assert view["figures_equal"] is True
    assert result["phases"]["large"]["views"]["10 days, brand"]["orders"] == 288  # 12 of 300 cancelled
    assert result["phases"]["small"]["rebuild"]["days"] == 10
    assert result["ok"] is True
