/* common/config/test_util.h — helpers shared by the config library's cmocka tests: load a
 * document from a string and compare diagnostics as the exact lines users see.
 */
#ifndef REMORA_COMMON_CONFIG_TEST_UTIL_H
#define REMORA_COMMON_CONFIG_TEST_UTIL_H

#include "common/config/config.h"

/* rm_config_load of a NUL-terminated text named `file`. Returns what rm_config_load returns. */
int tu_load_as(const char *file, const char *text, const rm_config_context_t *ctx,
               Remora__V1__ConfigSet **set, rm_config_diags_t *errors, rm_config_diags_t *warnings);

/* Loads `text` as "t.yaml" (or "t.json" when it starts with '{' or '['), fails the test on any
 * error or warning, and returns the set (free with tu_free). */
Remora__V1__ConfigSet *tu_load_ok(const char *text);

/* Like tu_load_ok with a context; warnings are allowed and returned in *warnings. */
Remora__V1__ConfigSet *tu_load_ok_ctx(const char *text, const rm_config_context_t *ctx,
                                      rm_config_diags_t *warnings);

/* Fails the test unless loading `text` gives exactly the errors `want` (NULL-terminated), each
 * formatted as users see it ("t.yaml:3:7: port: ..."), in order. */
void tu_expect_errors(const char *text, const char *const *want);
void tu_expect_errors_ctx(const char *text, const rm_config_context_t *ctx,
                          const char *const *want);

/* One error exactly. */
void tu_expect_error(const char *text, const char *want);

/* Fails unless the warnings are exactly `want` (and there are no errors). */
void tu_expect_warnings(const char *text, const rm_config_context_t *ctx, const char *const *want);

/* Fails the test unless both sets pack to the same bytes. */
void tu_assert_same(const Remora__V1__ConfigSet *a, const Remora__V1__ConfigSet *b);

/* Prints every diagnostic of a list into one malloc'd string (for failure messages). */
char *tu_dump(const rm_config_diags_t *d);

void tu_free(Remora__V1__ConfigSet *set);

#endif /* REMORA_COMMON_CONFIG_TEST_UTIL_H */
