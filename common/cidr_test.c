/* common/cidr_test.c — unit tests for rm_cidr4_parse, rm_cidr6_parse and rm_cidr_parse. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/cidr.h"

static void expect_ok(const char *s, const char *want)
{
    char out[RM_CIDR4_BUF];
    int rc = rm_cidr4_parse(s, out, sizeof(out));
    if (rc != 0)
        fail_msg("rm_cidr4_parse(\"%s\") = %d, want 0", s, rc);
    if (strcmp(out, want) != 0)
        fail_msg("rm_cidr4_parse(\"%s\") wrote \"%s\", want \"%s\"", s, out, want);
}

static void expect_error(const char *s, int want)
{
    char out[RM_CIDR4_BUF] = "untouched";
    int rc = rm_cidr4_parse(s, out, sizeof(out));
    if (rc != want)
        fail_msg("rm_cidr4_parse(\"%s\") = %d, want %d", s != NULL ? s : "(null)", rc, want);
    assert_string_equal(out, "untouched");
}

static void test_valid(void **state)
{
    (void)state;
    expect_ok("10.0.0.0/8", "10.0.0.0/8");
    expect_ok("169.254.169.254", "169.254.169.254/32");
    expect_ok("0.0.0.0/0", "0.0.0.0/0");
    expect_ok("255.255.255.255/32", "255.255.255.255/32");
    expect_ok("10.1.2.3/8", "10.1.2.3/8"); /* host bits kept, as iptables takes them */
    expect_ok("192.168.0.0/016", "192.168.0.0/16");
}

static void test_invalid(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "/8",
        "10.0.0.0/",
        "10.0.0.0/33",
        "10.0.0.0/-1",
        "10.0.0.0/+8",
        "10.0.0.0/ 8",
        "10.0.0.0/8 ",
        " 10.0.0.0/8",
        "10.0.0.0/8/8",
        "10.0.0/8",
        "10.0.0.0.0",
        "256.0.0.0/8",
        "010.0.0.0/8",
        "fd00::/8",
        "::1",
        "-j ACCEPT",
        "10.0.0.0/8x",
        "1234567890123456/8",
        "10.0.0.0/99999999999999999999999",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_error(bad[i], -EINVAL);
    expect_error(NULL, -EINVAL);
}

static void expect6_ok(const char *s, const char *want)
{
    char out[RM_CIDR6_BUF];
    int rc = rm_cidr6_parse(s, out, sizeof(out));
    if (rc != 0)
        fail_msg("rm_cidr6_parse(\"%s\") = %d, want 0", s, rc);
    if (strcmp(out, want) != 0)
        fail_msg("rm_cidr6_parse(\"%s\") wrote \"%s\", want \"%s\"", s, out, want);
}

static void expect6_error(const char *s, int want)
{
    char out[RM_CIDR6_BUF] = "untouched";
    int rc = rm_cidr6_parse(s, out, sizeof(out));
    if (rc != want)
        fail_msg("rm_cidr6_parse(\"%s\") = %d, want %d", s != NULL ? s : "(null)", rc, want);
    assert_string_equal(out, "untouched");
}

static void test_valid6(void **state)
{
    (void)state;
    expect6_ok("fd00::/8", "fd00::/8");
    expect6_ok("FD00:0:0::/08", "fd00::/8"); /* normalized as inet_ntop writes it */
    expect6_ok("2001:db8::1", "2001:db8::1/128");
    expect6_ok("::/0", "::/0");
    expect6_ok("::1", "::1/128");
    expect6_ok("fe80::/10", "fe80::/10");
    expect6_ok("2001:db8:0:0:1:0:0:1/64", "2001:db8::1:0:0:1/64");
    expect6_ok("fd00::5/64", "fd00::5/64"); /* host bits kept, as ip6tables takes them */
    expect6_ok("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128",
               "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128");
    /* The longest text inet_pton takes (45 characters): an IPv4-compatible address. */
    expect6_ok("0000:0000:0000:0000:0000:0000:255.255.255.255/128", "::255.255.255.255/128");
}

static void test_invalid6(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "/64",
        "fd00::/",
        "fd00::/129",
        "fd00::/-1",
        "fd00::/+8",
        "fd00::/ 8",
        "fd00::/8 ",
        " fd00::/8",
        "fd00::/8/8",
        "[fd00::]/8",
        "fe80::1%eth0",
        "fe80::1%eth0/64",
        "fd00:::1",
        "fd00::1::2",
        "1:2:3:4:5:6:7:8:9",
        "12345::",
        "fd0g::",
        "::ffff:10.0.0.0/104", /* IPv4-mapped: iptables' business, never ip6tables' */
        "::ffff:1.2.3.4",
        "10.0.0.0/8",
        "-j ACCEPT",
        "fd00::/8x",
        "fd00::/99999999999999999999999",
        "0000:0000:0000:0000:0000:0000:0000:0000:0000/8",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect6_error(bad[i], -EINVAL);
    expect6_error(NULL, -EINVAL);
}

static void test_either_family(void **state)
{
    (void)state;
    char out[RM_CIDR_BUF];
    assert_int_equal(rm_cidr_parse("10.0.0.0/8", out, sizeof(out)), 4);
    assert_string_equal(out, "10.0.0.0/8");
    assert_int_equal(rm_cidr_parse("FD00::/8", out, sizeof(out)), 6);
    assert_string_equal(out, "fd00::/8");
    assert_int_equal(rm_cidr_parse("1.2.3.4", out, sizeof(out)), 4);
    assert_string_equal(out, "1.2.3.4/32");
    assert_int_equal(rm_cidr_parse("10.0.0.0/33", out, sizeof(out)), -EINVAL);
    assert_int_equal(rm_cidr_parse("fd00::/129", out, sizeof(out)), -EINVAL);
    assert_int_equal(rm_cidr_parse("::ffff:1.2.3.4", out, sizeof(out)), -EINVAL);
    assert_int_equal(rm_cidr_parse("", out, sizeof(out)), -EINVAL);
    assert_int_equal(rm_cidr_parse(NULL, out, sizeof(out)), -EINVAL);
    assert_int_equal(rm_cidr_parse("fd00::/8", out, 4), -ENOSPC);
}

static void test_small_buffer(void **state)
{
    (void)state;
    char out[RM_CIDR4_BUF];
    memset(out, 'x', sizeof(out));
    assert_int_equal(rm_cidr4_parse("255.255.255.255", out, sizeof(out) - 1), -ENOSPC);
    assert_int_equal(out[0], 'x');
    assert_int_equal(rm_cidr4_parse("1.2.3.4", NULL, 0), -ENOSPC);
    assert_int_equal(rm_cidr4_parse("255.255.255.255", out, sizeof(out)), 0);
    assert_string_equal(out, "255.255.255.255/32");

    char out6[RM_CIDR6_BUF];
    memset(out6, 'x', sizeof(out6));
    assert_int_equal(rm_cidr6_parse("2001:db8::1", out6, strlen("2001:db8::1/128")), -ENOSPC);
    assert_int_equal(out6[0], 'x');
    assert_int_equal(rm_cidr6_parse("::1", NULL, 0), -ENOSPC);
    assert_int_equal(rm_cidr6_parse("2001:db8::1", out6, strlen("2001:db8::1/128") + 1), 0);
    assert_string_equal(out6, "2001:db8::1/128");
    /* inet_ntop never writes more than 39 characters here, so "/128" and the NUL fit. */
    assert_int_equal(
        rm_cidr6_parse("1111:2222:3333:4444:5555:6666:7777:8888/128", out6, sizeof(out6)), 0);
    assert_string_equal(out6, "1111:2222:3333:4444:5555:6666:7777:8888/128");
}

/* Every prefix of valid and invalid inputs, each ending right before a PROT_NONE page, so any
 * read past the NUL faults; each must parse or fail cleanly. */
static void test_guard_page_every_length(void **state)
{
    (void)state;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    char *m = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(m != MAP_FAILED);
    assert_int_equal(mprotect(m + page, page, PROT_NONE), 0);
    static const char *const inputs[] = {"255.255.255.255/32",
                                         "10.0.0.0/8",
                                         "1.2.3.4/",
                                         "1.2.3.4/333",
                                         "fd00::/8",
                                         "2001:db8::1/128",
                                         "0000:0000:0000:0000:0000:ffff:255.255.255.255/128",
                                         "fe80::1%eth0/64",
                                         "fd00::/1299"};
    for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
        size_t len = strlen(inputs[i]);
        for (size_t n = 0; n <= len; n++) {
            char *s = m + page - (n + 1);
            memcpy(s, inputs[i], n);
            s[n] = '\0';
            char out[RM_CIDR_BUF];
            int rc = rm_cidr4_parse(s, out, sizeof(out));
            assert_true(rc == 0 || rc == -EINVAL);
            rc = rm_cidr6_parse(s, out, sizeof(out));
            assert_true(rc == 0 || rc == -EINVAL);
            rc = rm_cidr_parse(s, out, sizeof(out));
            assert_true(rc == 4 || rc == 6 || rc == -EINVAL);
        }
    }
    munmap(m, 2 * page);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_valid6),
        cmocka_unit_test(test_invalid6),
        cmocka_unit_test(test_either_family),
        cmocka_unit_test(test_small_buffer),
        cmocka_unit_test(test_guard_page_every_length),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
