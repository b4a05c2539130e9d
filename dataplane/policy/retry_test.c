/* dataplane/policy/retry_test.c — the retry rules of SPEC.md ("Retries, safe by default"), one
 * decision at a time: which failures may be retried, which refusals are counted and why, the
 * backoff's bounds, the budget and maxRetries. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "dataplane/policy/retry.h"

/* Each test takes its own budget key, so the shared table starts empty for it. */
static uint64_t next_key = 1000;

static rm_retry_policy_t policy(unsigned retry_on)
{
    return (rm_retry_policy_t){.attempts = 2,
                               .retry_on = retry_on,
                               .backoff_base_ms = 25,
                               .backoff_max_ms = 250,
                               .budget_percent = 20,
                               .budget_min_per_second = 10};
}

static rm_retry_attempt_t attempt(rm_retry_cause_t cause)
{
    return (rm_retry_attempt_t){.cause = cause, .now_s = 100.0, .deadline_s = 115.0};
}

static void test_connect_failure_is_retried_whatever_the_method(void **state)
{
    (void)state;
    rm_retry_policy_t p = policy(RM_RETRY_ON_CONNECT_FAILURE);
    rm_retry_budget_t *b = rm_retry_budget_for(next_key++);
    rm_retry_attempt_t a = attempt(RM_RETRY_CAUSE_CONNECT_FAILURE);
    a.idempotent = false; /* a POST */
    rm_retry_verdict_t v = rm_retry_decide(&p, NULL, b, &a);
    assert_true(v.retry);
    assert_string_equal(v.reason, "connect-failure");
    rm_retry_budget_release(b);
}

static void test_reset_after_bytes_needs_idempotency(void **state)
{
    (void)state;
    rm_retry_policy_t p = policy(RM_RETRY_ON_RESET);
    rm_retry_budget_t *b = rm_retry_budget_for(next_key++);
    rm_retry_attempt_t a = attempt(RM_RETRY_CAUSE_RESET);
    a.bytes_sent = 120;
    rm_retry_verdict_t v = rm_retry_decide(&p, NULL, b, &a);
    assert_false(v.retry);
    assert_string_equal(v.skip_reason, "non_idempotent");
    a.idempotent = true;
    v = rm_retry_decide(&p, NULL, b, &a);
    assert_true(v.retry);
    assert_string_equal(v.reason, "reset");
    rm_retry_budget_release(b);
    /* Nothing written: provably unprocessed, retried whatever the method. */
    a.idempotent = false;
    a.bytes_sent = 0;
    v = rm_retry_decide(&p, NULL, b, &a);
    assert_true(v.retry);
    rm_retry_budget_release(b);
}

static void test_connect_failure_policy_covers_unwritten_resets_only(void **state)
{
    (void)state;
    rm_retry_policy_t p = policy(RM_RETRY_ON_CONNECT_FAILURE);
    rm_retry_budget_t *b = rm_retry_budget_for(next_key++);
    rm_retry_attempt_t a = attempt(RM_RETRY_CAUSE_RESET);
    a.idempotent = true;
    assert_true(rm_retry_decide(&p, NULL, b, &a).retry);
    rm_retry_budget_release(b);
    a.bytes_sent = 1;
    rm_retry_verdict_t v = rm_retry_decide(&p, NULL, b, &a);
    assert_false(v.retry);
    assert_null(v.reason); /* no condition matched: nothing to count */
    assert_null(v.skip_reason);
}

static void test_status_conditions_and_labels(void **state)
{
    (void)state;
    uint32_t codes[] = {409};
    rm_retry_policy_t p = policy(RM_RETRY_ON_GATEWAY_ERROR | RM_RETRY_ON_RETRIABLE_CODES);
    p.retriable_status_codes = codes;
    p.nretriable_status_codes = 1;
    assert_true(rm_retry_status_matches(&p, 503));
    assert_true(rm_retry_status_matches(&p, 409));
    assert_false(rm_retry_status_matches(&p, 500));
    assert_false(rm_retry_status_matches(&p, 200));
    rm_retry_budget_t *b = rm_retry_budget_for(next_key++);
    rm_retry_attempt_t a = attempt(RM_RETRY_CAUSE_STATUS);
    a.idempotent = true;
    a.status = 503;
    rm_retry_verdict_t v = rm_retry_decide(&p, NULL, b, &a);
    assert_string_equal(v.reason, "gateway-error");
    rm_retry_budget_release(b);
    a.status = 409;
    v = rm_retry_decide(&p, NULL, b, &a);
    assert_string_equal(v.reason, "retriable-status-codes");
    rm_retry_budget_release(b);
    p.retry_on = RM_RETRY_ON_5XX;
    a.status = 500;
    v = rm_retry_decide(&p, NULL, b, &a);
    assert_string_equal(v.reason, "5xx");
    rm_retry_budget_release(b);
    /* A status retry is ambiguous: the app answered. */
    a.idempotent = false;
    a.bytes_sent = 10;
    v = rm_retry_decide(&p, NULL, b, &a);
    assert_false(v.retry);
    assert_string_equal(v.skip_reason, "non_idempotent");
}

static void test_refusals_are_named(void **state)
{
    (void)state;
    rm_retry_policy_t p = policy(RM_RETRY_ON_CONNECT_FAILURE | RM_RETRY_ON_RESET);
    rm_retry_budget_t *b = rm_retry_budget_for(next_key++);
    rm_retry_attempt_t a = attempt(RM_RETRY_CAUSE_RESET);
    a.idempotent = true;
    a.bytes_sent = 10;
    a.retries = 2; /* attempts: 2 */
    assert_string_equal(rm_retry_decide(&p, NULL, b, &a).skip_reason, "exhausted");
    a.retries = 0;
    a.replay_overflow = true;
    assert_string_equal(rm_retry_decide(&p, NULL, b, &a).skip_reason, "body_too_large");
    /* Provably unprocessed, yet the body that went to the failed attempt was not kept: refused
     * too (a retry would send the head and never the body). */
    rm_retry_attempt_t c = attempt(RM_RETRY_CAUSE_CONNECT_FAILURE);
    c.replay_overflow = true;
    assert_string_equal(rm_retry_decide(&p, NULL, b, &c).skip_reason, "body_too_large");
    a.replay_overflow = false;
    a.deadline_s = a.now_s; /* no time left for any backoff */
    assert_string_equal(rm_retry_decide(&p, NULL, b, &a).skip_reason, "deadline");
}

static void test_backoff_is_jittered_within_its_cap(void **state)
{
    (void)state;
    rm_retry_policy_t p = policy(RM_RETRY_ON_CONNECT_FAILURE);
    p.budget_min_per_second = 1000;
    rm_retry_budget_t *b = rm_retry_budget_for(next_key++);
    rm_retry_attempt_t a = attempt(RM_RETRY_CAUSE_CONNECT_FAILURE);
    double max_seen = 0;
    uint64_t r = 88172645463325252ULL;
    for (int i = 0; i < 2000; i++) {
        r ^= r << 13;
        r ^= r >> 7;
        r ^= r << 17;
        a.random = r;
        a.retries = i % 2;
        rm_retry_verdict_t v = rm_retry_decide(&p, NULL, b, &a);
        assert_true(v.retry);
        double cap = a.retries == 0 ? 0.025 : 0.050; /* base * 2^n */
        assert_true(v.backoff_s >= 0 && v.backoff_s <= cap);
        if (v.backoff_s > max_seen)
            max_seen = v.backoff_s;
        rm_retry_budget_release(b);
    }
    assert_true(max_seen > 0.045); /* full jitter reaches near the cap */
    a.retries = 10;                /* 25 ms * 2^10 is past max: capped at 250 ms */
    p.attempts = 20;
    a.random = UINT64_MAX;
    rm_retry_verdict_t v = rm_retry_decide(&p, NULL, b, &a);
    assert_true(v.backoff_s <= 0.250 && v.backoff_s > 0.249);
    rm_retry_budget_release(b);
}

/* 20% of the last ten seconds' requests, but never fewer than minPerSecond x 10. */
static void test_budget(void **state)
{
    (void)state;
    rm_retry_policy_t p = policy(RM_RETRY_ON_CONNECT_FAILURE);
    p.attempts = 100;
    p.budget_min_per_second = 1; /* floor: 10 retries per 10 s */
    rm_retry_budget_t *b = rm_retry_budget_for(next_key++);
    rm_retry_attempt_t a = attempt(RM_RETRY_CAUSE_CONNECT_FAILURE);
    int granted = 0;
    for (int i = 0; i < 30; i++) {
        rm_retry_verdict_t v = rm_retry_decide(&p, NULL, b, &a);
        if (v.retry) {
            granted++;
            rm_retry_budget_release(b);
        } else {
            assert_string_equal(v.skip_reason, "budget");
        }
    }
    assert_int_equal(granted, 10);
    for (int i = 0; i < 100; i++) /* 100 requests: 20% is 20 retries, 10 more than taken */
        rm_retry_budget_note_request(b, (int64_t)a.now_s);
    granted = 0;
    for (int i = 0; i < 30; i++) {
        if (rm_retry_decide(&p, NULL, b, &a).retry) {
            granted++;
            rm_retry_budget_release(b);
        }
    }
    assert_int_equal(granted, 10);
    /* Ten seconds later the window has moved past all of it. */
    a.now_s += 10;
    a.deadline_s += 10;
    assert_true(rm_retry_decide(&p, NULL, b, &a).retry);
    rm_retry_budget_release(b);
}

/* maxRetries bounds the retries in flight; a released one makes room. */
static void test_max_retries_in_flight(void **state)
{
    (void)state;
    rm_retry_policy_t p = policy(RM_RETRY_ON_CONNECT_FAILURE);
    p.budget_min_per_second = 1000;
    rm_circuit_breaker_t cb = {.max_retries = 2};
    rm_retry_budget_t *b = rm_retry_budget_for(next_key++);
    rm_retry_attempt_t a = attempt(RM_RETRY_CAUSE_CONNECT_FAILURE);
    assert_true(rm_retry_decide(&p, &cb, b, &a).retry);
    assert_true(rm_retry_decide(&p, &cb, b, &a).retry);
    assert_string_equal(rm_retry_decide(&p, &cb, b, &a).skip_reason, "limit");
    rm_retry_budget_release(b);
    assert_true(rm_retry_decide(&p, &cb, b, &a).retry);
    rm_retry_budget_release(b);
    rm_retry_budget_release(b);
    rm_retry_budget_release(b); /* never below zero */
    assert_true(rm_retry_decide(&p, &cb, b, &a).retry);
    assert_true(rm_retry_decide(&p, &cb, b, &a).retry);
    assert_false(rm_retry_decide(&p, &cb, b, &a).retry);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connect_failure_is_retried_whatever_the_method),
        cmocka_unit_test(test_reset_after_bytes_needs_idempotency),
        cmocka_unit_test(test_connect_failure_policy_covers_unwritten_resets_only),
        cmocka_unit_test(test_status_conditions_and_labels),
        cmocka_unit_test(test_refusals_are_named),
        cmocka_unit_test(test_backoff_is_jittered_within_its_cap),
        cmocka_unit_test(test_budget),
        cmocka_unit_test(test_max_retries_in_flight),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
