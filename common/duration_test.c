/* common/duration_test.c — unit tests for rm_duration_parse / rm_duration_format. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "common/duration.h"

static uint64_t parse_ok(const char *s)
{
    uint64_t ms = 12345;
    int rc = rm_duration_parse(s, &ms);
    if (rc != 0)
        fail_msg("rm_duration_parse(\"%s\") = %d, want 0", s, rc);
    return ms;
}

static void expect_error(const char *s, int want)
{
    uint64_t ms = 777;
    int rc = rm_duration_parse(s, &ms);
    if (rc != want)
        fail_msg("rm_duration_parse(\"%s\") = %d, want %d", s ? s : "(null)", rc, want);
    assert_int_equal(ms, 777); /* untouched on failure */
}

static void test_parse_valid(void **state)
{
    (void)state;
    assert_int_equal(parse_ok("250ms"), 250);
    assert_int_equal(parse_ok("2s"), 2000);
    assert_int_equal(parse_ok("1.5s"), 1500);
    assert_int_equal(parse_ok("1m"), 60000);
    assert_int_equal(parse_ok("1h"), 3600000);
    assert_int_equal(parse_ok("0s"), 0);
    assert_int_equal(parse_ok("0ms"), 0);
    assert_int_equal(parse_ok("1m30s"), 90000);
    assert_int_equal(parse_ok("1h1m1s1ms"), 3661001);
    assert_int_equal(parse_ok("0.25s"), 250);
    assert_int_equal(parse_ok("1.500s"), 1500);
    assert_int_equal(parse_ok("0.5h"), 1800000);
    assert_int_equal(parse_ok("0.0001h"), 360);
    assert_int_equal(parse_ok("1.0000000000ms"), 1);
    assert_int_equal(parse_ok("18446744073709551615ms"), UINT64_MAX);
    assert_int_equal(parse_ok("007s"), 7000);
}

static void test_parse_errors(void **state)
{
    (void)state;
    expect_error("", RM_DURATION_EEMPTY);
    expect_error(NULL, RM_DURATION_EEMPTY);
    expect_error("-1s", RM_DURATION_ENEGATIVE);
    expect_error("10", RM_DURATION_ENOUNIT);
    expect_error("1m30", RM_DURATION_ENOUNIT);
    expect_error("1.5", RM_DURATION_ENOUNIT);
    expect_error("10x", RM_DURATION_EUNIT);
    expect_error("10us", RM_DURATION_EUNIT);
    expect_error("10sec", RM_DURATION_EUNIT);
    expect_error("10S", RM_DURATION_EUNIT);
    expect_error("18446744073709551616ms", RM_DURATION_ERANGE);
    expect_error("5124095576030432h", RM_DURATION_ERANGE);
    expect_error("18446744073709551615ms1ms", RM_DURATION_ERANGE);
    expect_error("99999999999999999999999h", RM_DURATION_ERANGE);
    expect_error("1s ", RM_DURATION_ESYNTAX);
    expect_error(" 1s", RM_DURATION_ESYNTAX);
    expect_error("1 s", RM_DURATION_ESYNTAX);
    expect_error("+1s", RM_DURATION_ESYNTAX);
    expect_error("s", RM_DURATION_ESYNTAX);
    expect_error(".5s", RM_DURATION_ESYNTAX);
    expect_error("1.s", RM_DURATION_ESYNTAX);
    expect_error("1s!", RM_DURATION_ESYNTAX);
    expect_error("1.5ms", RM_DURATION_EPRECISION);
    expect_error("0.0001s", RM_DURATION_EPRECISION);
    expect_error("0.00000000001h", RM_DURATION_EPRECISION);
}

static void expect_format(uint64_t ms, const char *want)
{
    char buf[RM_DURATION_BUF];
    int n = rm_duration_format(ms, buf, sizeof(buf));
    assert_int_equal(n, (int)strlen(want));
    assert_string_equal(buf, want);
}

static void test_format(void **state)
{
    (void)state;
    expect_format(0, "0s");
    expect_format(250, "250ms");
    expect_format(1500, "1500ms");
    expect_format(2000, "2s");
    expect_format(90000, "90s");
    expect_format(60000, "1m");
    expect_format(3600000, "1h");
    expect_format(5400000, "90m");
    expect_format(UINT64_MAX, "18446744073709551615ms");
}

static void test_format_truncates_like_snprintf(void **state)
{
    char buf[4];
    (void)state;
    assert_int_equal(rm_duration_format(250, buf, sizeof(buf)), 5);
    assert_string_equal(buf, "250");
    assert_int_equal(rm_duration_format(250, NULL, 0), 5);
    assert_true(rm_duration_format(250, NULL, 3) < 0);
}

/* parse(format(x)) == x over a spread of values that hit every unit and the edges. */
static void test_round_trip(void **state)
{
    static const uint64_t base[] = {0, 1, 999, 1000, 59999, 60000, 3599999, 3600000, UINT64_MAX};
    (void)state;
    for (size_t i = 0; i < sizeof(base) / sizeof(base[0]); i++) {
        for (uint64_t d = 0; d < 3; d++) {
            uint64_t x = base[i] >= d ? base[i] - d : base[i] + d, got = 0;
            char buf[RM_DURATION_BUF];
            rm_duration_format(x, buf, sizeof(buf));
            assert_int_equal(rm_duration_parse(buf, &got), 0);
            assert_true(got == x);
        }
    }
    for (uint64_t x = 1; x < UINT64_MAX / 7; x = x * 7 + 3) {
        char buf[RM_DURATION_BUF];
        uint64_t got = 0;
        rm_duration_format(x, buf, sizeof(buf));
        assert_int_equal(rm_duration_parse(buf, &got), 0);
        assert_true(got == x);
    }
}

static void test_strerror(void **state)
{
    (void)state;
    assert_string_equal(rm_duration_strerror(RM_DURATION_ENOUNIT),
                        "is missing a unit (use ms, s, m or h)");
    assert_string_equal(rm_duration_strerror(-100), "is not a valid duration");
    for (int c = RM_DURATION_EPRECISION; c <= 0; c++)
        assert_non_null(rm_duration_strerror(c));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_valid), cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_format),      cmocka_unit_test(test_format_truncates_like_snprintf),
        cmocka_unit_test(test_round_trip),  cmocka_unit_test(test_strerror),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
