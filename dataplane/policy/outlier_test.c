/* dataplane/policy/outlier_test.c — consecutive-error ejection: thresholds, growing ejection
 * times, the ejection cap, and success resetting the counts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "dataplane/policy/outlier.h"

static const rm_circuit_breaker_t cb = {.consecutive_5xx = 5,
                                        .consecutive_gateway_errors = 3,
                                        .base_ejection_time_ms = 30000,
                                        .max_ejection_percent = 50};

static void test_classify(void **state)
{
    (void)state;
    assert_int_equal(rm_outlier_classify(200), RM_OUTLIER_SUCCESS);
    assert_int_equal(rm_outlier_classify(404), RM_OUTLIER_SUCCESS);
    assert_int_equal(rm_outlier_classify(500), RM_OUTLIER_5XX);
    assert_int_equal(rm_outlier_classify(502), RM_OUTLIER_GATEWAY_ERROR);
    assert_int_equal(rm_outlier_classify(504), RM_OUTLIER_GATEWAY_ERROR);
    assert_int_equal(rm_outlier_classify(505), RM_OUTLIER_5XX);
}

static void test_gateway_errors_eject_and_time_grows(void **state)
{
    (void)state;
    rm_outlier_state_t st = {0};
    double now = 1000;
    assert_true(rm_outlier_record(&st, &cb, RM_OUTLIER_GATEWAY_ERROR, now, true) == 0);
    assert_true(rm_outlier_record(&st, &cb, RM_OUTLIER_GATEWAY_ERROR, now, true) == 0);
    assert_true(rm_outlier_record(&st, &cb, RM_OUTLIER_GATEWAY_ERROR, now, true) == 30.0);
    assert_true(rm_outlier_is_ejected(&st, now + 29));
    assert_false(rm_outlier_is_ejected(&st, now + 30));
    /* While ejected, more failures do not extend it. */
    for (int i = 0; i < 5; i++)
        assert_true(rm_outlier_record(&st, &cb, RM_OUTLIER_GATEWAY_ERROR, now + 1, true) == 0);
    /* Back, and failing again: the second ejection lasts twice as long. */
    now += 31;
    st.consecutive_gateway = 0;
    st.consecutive_5xx = 0;
    for (int i = 0; i < 2; i++)
        rm_outlier_record(&st, &cb, RM_OUTLIER_GATEWAY_ERROR, now, true);
    assert_true(rm_outlier_record(&st, &cb, RM_OUTLIER_GATEWAY_ERROR, now, true) == 60.0);
}

static void test_success_resets_and_5xx_threshold(void **state)
{
    (void)state;
    rm_outlier_state_t st = {0};
    for (int i = 0; i < 4; i++)
        rm_outlier_record(&st, &cb, RM_OUTLIER_5XX, 10, true);
    rm_outlier_record(&st, &cb, RM_OUTLIER_SUCCESS, 10, true);
    assert_int_equal(st.consecutive_5xx, 0);
    for (int i = 0; i < 4; i++)
        assert_true(rm_outlier_record(&st, &cb, RM_OUTLIER_5XX, 10, true) == 0);
    assert_true(rm_outlier_record(&st, &cb, RM_OUTLIER_5XX, 10, true) > 0);
}

static void test_cap_and_no_breaker(void **state)
{
    (void)state;
    /* 50% of 4 endpoints: two may be ejected at once; of 3, one; the only endpoint never. */
    assert_true(rm_outlier_may_eject(4, 1, &cb));
    assert_false(rm_outlier_may_eject(4, 2, &cb));
    assert_true(rm_outlier_may_eject(3, 0, &cb));
    assert_false(rm_outlier_may_eject(3, 1, &cb));
    assert_true(rm_outlier_may_eject(2, 0, &cb)); /* at least one, whatever the percent */
    assert_false(rm_outlier_may_eject(1, 0, &cb));
    rm_outlier_state_t st = {0};
    for (int i = 0; i < 5; i++)
        assert_true(rm_outlier_record(&st, &cb, RM_OUTLIER_GATEWAY_ERROR, 10, false) == 0);
    assert_false(rm_outlier_is_ejected(&st, 10));
    rm_outlier_state_t none = {0};
    for (int i = 0; i < 10; i++)
        assert_true(rm_outlier_record(&none, NULL, RM_OUTLIER_GATEWAY_ERROR, 10, true) == 0);
    assert_int_equal(none.consecutive_gateway, 0); /* nothing counted without a breaker */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_gateway_errors_eject_and_time_grows),
        cmocka_unit_test(test_success_resets_and_5xx_threshold),
        cmocka_unit_test(test_cap_and_no_breaker),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
