/* dataplane/http1/http1_test.c — table-driven tests of the request and response head parsers:
 * every case whole, against a guard page, split at every byte, and fed incrementally. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/http1/http1.h"
#include "dataplane/http1/http1_test_util.h"

#define R(s)     .raw = (s), .len = sizeof(s) - 1
#define MAX_HDRS 128
#define H1       "GET / HTTP/1.1\r\n"
#define KA       RM_HTTP1_F_KEEP_ALIVE
#define M(x)     RM_HTTP1_METHOD_##x
#define B(x)     RM_HTTP1_BODY_##x
#define E(x)     RM_HTTP1_E_##x
#define OK       0 /* expected rc: complete, head length == whole input */
#define CL_IS(n) .body = B(CONTENT_LENGTH), .cl = (n)

static const rm_http1_limits_t small_limits = {
    .max_request_line = 32,
    .max_head_bytes = 256,
    .max_headers = 4,
};

typedef struct req_case {
    const char *name;
    const char *raw;
    size_t len;
    const rm_http1_limits_t *lim; /* NULL: defaults */
    int rc;                       /* OK, or the expected error */
    int status;                   /* expected error_status */
    rm_http1_method_t method;
    rm_http1_body_t body;
    uint64_t cl;
    unsigned set;   /* flags that must be set */
    unsigned clear; /* flags that must be clear */
    size_t nh;      /* expected num_headers */
    rm_http1_target_form_t form;
    const char *authority; /* expected authority, or NULL to skip */
    const char *path;      /* expected path, or NULL to skip */
} req_case_t;

static const req_case_t req_cases[] = {
    /* ---- valid ---- */
    {"simple GET", R(H1 "Host: a\r\n\r\n"), .method = M(GET), .set = KA | RM_HTTP1_F_HAS_HOST,
     .nh = 1, .authority = "a", .path = "/"},
    {"GET with query and headers",
     R("GET /p/q?x=1&y=%20 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t/1.0\r\nAccept: */*\r\n"
       "X-Request-Id: abc\r\n\r\n"),
     .method = M(GET), .set = KA, .nh = 4, .authority = "example.com", .path = "/p/q?x=1&y=%20"},
    {"HEAD", R("HEAD /x HTTP/1.1\r\nHost: a\r\n\r\n"), .method = M(HEAD), .set = KA, .nh = 1},
    {"POST Content-Length", R("POST /f HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n"),
     .method = M(POST), CL_IS(5), .set = KA, .nh = 2},
    {"POST Content-Length 0", R("POST /f HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"),
     .method = M(POST), CL_IS(0), .nh = 2},
    {"PUT chunked", R("PUT /f HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"),
     .method = M(PUT), .body = B(CHUNKED), .nh = 2},
    {"PATCH Chunked mixed case",
     R("PATCH /f HTTP/1.1\r\nHost: a\r\ntransfer-encoding: ChUnKeD\r\n\r\n"), .method = M(PATCH),
     .body = B(CHUNKED), .nh = 2},
    {"DELETE", R("DELETE /r/1 HTTP/1.1\r\nHost: a\r\n\r\n"), .method = M(DELETE), .nh = 1},
    {"OPTIONS asterisk", R("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"), .method = M(OPTIONS), .nh = 1,
     .form = RM_HTTP1_TARGET_ASTERISK, .path = "*", .authority = "a"},
    {"OPTIONS origin", R("OPTIONS /x HTTP/1.1\r\nHost: a\r\n\r\n"), .method = M(OPTIONS), .nh = 1},
    {"TRACE", R("TRACE / HTTP/1.1\r\nHost: a\r\n\r\n"), .method = M(TRACE), .nh = 1},
    {"CONNECT authority-form",
     R("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"), .method = M(CONNECT),
     .body = B(TUNNEL), .nh = 1, .form = RM_HTTP1_TARGET_AUTHORITY, .authority = "example.com:443",
     .path = ""},
    {"CONNECT IPv6", R("CONNECT [::1]:8080 HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n"),
     .method = M(CONNECT), .body = B(TUNNEL), .nh = 1, .form = RM_HTTP1_TARGET_AUTHORITY,
     .authority = "[::1]:8080"},
    {"CONNECT Content-Length 0",
     R("CONNECT h:1 HTTP/1.1\r\nHost: h:1\r\nContent-Length: 0\r\n\r\n"), .method = M(CONNECT),
     .body = B(TUNNEL), .nh = 2, .form = RM_HTTP1_TARGET_AUTHORITY},
    {"absolute-form", R("GET http://example.com/path?q=1 HTTP/1.1\r\nHost: example.com\r\n\r\n"),
     .method = M(GET), .nh = 1, .form = RM_HTTP1_TARGET_ABSOLUTE, .authority = "example.com",
     .path = "/path?q=1"},
    {"absolute-form https no path", R("GET HTTPS://Example.com:8443 HTTP/1.1\r\nHost: x\r\n\r\n"),
     .method = M(GET), .nh = 1, .form = RM_HTTP1_TARGET_ABSOLUTE, .authority = "Example.com:8443",
     .path = ""},
    {"absolute-form query only", R("GET http://h?x HTTP/1.1\r\nHost: h\r\n\r\n"), .method = M(GET),
     .nh = 1, .form = RM_HTTP1_TARGET_ABSOLUTE, .authority = "h", .path = "?x"},
    {"HTTP/1.0 without Host", R("GET / HTTP/1.0\r\n\r\n"), .method = M(GET), .clear = KA, .nh = 0},
    {"HTTP/1.0 keep-alive", R("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"), .method = M(GET),
     .set = KA | RM_HTTP1_F_CONN_KEEP_ALIVE | RM_HTTP1_F_HAS_CONNECTION, .nh = 1},
    {"HTTP/1.1 Connection close", R(H1 "Host: a\r\nConnection: close\r\n\r\n"), .method = M(GET),
     .set = RM_HTTP1_F_CONN_CLOSE, .clear = KA, .nh = 2},
    {"close beats keep-alive", R(H1 "Host: a\r\nConnection: keep-alive, close\r\n\r\n"),
     .method = M(GET), .set = RM_HTTP1_F_CONN_CLOSE, .clear = KA, .nh = 2},
    {"Expect 100-continue",
     R("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n"),
     .method = M(POST), CL_IS(3), .set = RM_HTTP1_F_EXPECT_CONTINUE, .nh = 3},
    {"Expect 100-Continue any case", R(H1 "Host: a\r\nExpect: 100-Continue\r\n\r\n"),
     .method = M(GET), .set = RM_HTTP1_F_EXPECT_CONTINUE, .nh = 2},
    {"Expect ignored on HTTP/1.0", R("GET / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n"),
     .method = M(GET), .clear = RM_HTTP1_F_EXPECT_CONTINUE, .nh = 1},
    {"Upgrade websocket", R(H1 "Host: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"),
     .method = M(GET), .set = RM_HTTP1_F_UPGRADE | RM_HTTP1_F_CONN_UPGRADE, .nh = 3},
    {"Connection names hop-by-hop", R(H1 "Host: a\r\nConnection: close, X-Foo\r\nX-Foo: 1\r\n\r\n"),
     .method = M(GET), .set = RM_HTTP1_F_CONN_OTHER | RM_HTTP1_F_CONN_CLOSE, .nh = 3},
    {"Connection empty elements", R(H1 "Host: a\r\nConnection: , close ,\r\n\r\n"),
     .method = M(GET), .set = RM_HTTP1_F_CONN_CLOSE, .clear = RM_HTTP1_F_CONN_OTHER, .nh = 2},
    {"other method", R("PROPFIND /d HTTP/1.1\r\nHost: a\r\n\r\n"), .method = M(OTHER), .nh = 1},
    {"lowercase method is a token", R("get / HTTP/1.1\r\nHost: a\r\n\r\n"), .method = M(OTHER),
     .nh = 1},
    {"one leading CRLF", R("\r\n" H1 "Host: a\r\n\r\n"), .method = M(GET), .nh = 1},
    {"four leading CRLFs", R("\r\n\r\n\r\n\r\n" H1 "Host: a\r\n\r\n"), .method = M(GET), .nh = 1},
    {"empty field value", R(H1 "Host: a\r\nX-Empty:\r\n\r\n"), .method = M(GET), .nh = 2},
    {"OWS around value", R(H1 "Host: a\r\nX-W: \t a b \t \r\n\r\n"), .method = M(GET), .nh = 2},
    {"long values with HTAB and obs-text",
     R("GET /0123456789abcdef/0123456789abcdef?q=0123456789abcdef HTTP/1.1\r\nHost: a\r\n"
       "X-Long: 0123456789abcdef\t0123456789abcdef \xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9 "
       "0123456789\r\n\r\n"),
     .method = M(GET), .nh = 2, .path = "/0123456789abcdef/0123456789abcdef?q=0123456789abcdef"},
    {"obs-text in value", R(H1 "Host: a\r\nX-T: caf\xc3\xa9\r\n\r\n"), .method = M(GET), .nh = 2},
    {"Host with port", R(H1 "Host: a.example:8080\r\n\r\n"), .method = M(GET), .nh = 1,
     .authority = "a.example:8080"},
    {"empty Host", R(H1 "Host:\r\n\r\n"), .method = M(GET), .set = RM_HTTP1_F_HAS_HOST, .nh = 1,
     .authority = ""},
    {"Host IPv6", R(H1 "Host: [2001:db8::1]:80\r\n\r\n"), .method = M(GET), .nh = 1},
    {"Host pct-encoded", R(H1 "Host: ex%41mple\r\n\r\n"), .method = M(GET), .nh = 1},
    {"TE leading HTAB, trailing SP",
     R("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\t chunked \r\n\r\n"), .method = M(POST),
     .body = B(CHUNKED), .nh = 2},
    {"Content-Length leading zeros", R("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 007\r\n\r\n"),
     .method = M(POST), CL_IS(7), .nh = 2},
    {"Content-Length INT64_MAX",
     R("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9223372036854775807\r\n\r\n"),
     .method = M(POST), CL_IS(9223372036854775807ull), .nh = 2},
    {"all tchar in name", R(H1 "Host: a\r\n!#$%&'*+-.^_`|~09azAZ: v\r\n\r\n"), .method = M(GET),
     .nh = 2},
    {"at header limit", R(H1 "Host: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n"), .lim = &small_limits,
     .method = M(GET), .nh = 4},

    /* ---- invalid: framing ---- */
    {"CL and TE",
     R("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"),
     .rc = E(CL_AND_TE), .status = 400},
    {"TE and CL",
     R("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"),
     .rc = E(CL_AND_TE), .status = 400},
    {"duplicate CL different",
     R("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"),
     .rc = E(CONTENT_LENGTH), .status = 400},
    {"duplicate CL equal",
     R("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n"),
     .rc = E(CONTENT_LENGTH), .status = 400},
    {"CL list", R("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n"),
     .rc = E(CONTENT_LENGTH), .status = 400},
    {"CL non-digit", R("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5a\r\n\r\n"),
     .rc = E(CONTENT_LENGTH), .status = 400},
    {"CL negative", R("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n"),
     .rc = E(CONTENT_LENGTH), .status = 400},
    {"CL plus sign", R("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n"),
     .rc = E(CONTENT_LENGTH), .status = 400},
    {"CL overflow", R("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551616\r\n\r\n"),
     .rc = E(CONTENT_LENGTH), .status = 400},
    {"CL above INT64_MAX",
     R("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9223372036854775808\r\n\r\n"),
     .rc = E(CONTENT_LENGTH), .status = 400},
    {"CL trailing HTAB", R("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\t\r\n\r\n"),
     .rc = E(CONTENT_LENGTH), .status = 400},
    {"TE trailing HTAB", R("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked \t\r\n\r\n"),
     .rc = E(TRANSFER_ENCODING), .status = 400},
    {"CL empty", R("POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n"),
     .rc = E(CONTENT_LENGTH), .status = 400},
    {"TE identity, chunked",
     R("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity, chunked\r\n\r\n"),
     .rc = E(TE_UNSUPPORTED), .status = 501},
    {"TE gzip, chunked",
     R("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
     .rc = E(TE_UNSUPPORTED), .status = 501},
    {"TE chunked, gzip",
     R("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"),
     .rc = E(TRANSFER_ENCODING), .status = 400},
    {"TE xchunked", R("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n"),
     .rc = E(TRANSFER_ENCODING), .status = 400},
    {"TE gzip only", R("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n"),
     .rc = E(TRANSFER_ENCODING), .status = 400},
    {"TE chunked junk", R("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked x\r\n\r\n"),
     .rc = E(TRANSFER_ENCODING), .status = 400},
    {"TE chunked parameter",
     R("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;q=1\r\n\r\n"),
     .rc = E(TRANSFER_ENCODING), .status = 400},
    {"TE chunked then comma",
     R("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked,\r\n\r\n"),
     .rc = E(TRANSFER_ENCODING), .status = 400},
    {"TE empty", R("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n"),
     .rc = E(TRANSFER_ENCODING), .status = 400},
    {"TE twice on two lines",
     R("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: "
       "chunked\r\n\r\n"),
     .rc = E(TRANSFER_ENCODING), .status = 400},
    {"TE obs-fold", R("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n"),
     .rc = E(OBS_FOLD), .status = 400},
    {"TE on HTTP/1.0", R("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"),
     .rc = E(TRANSFER_ENCODING), .status = 400},
    {"CONNECT with TE",
     R("CONNECT h:1 HTTP/1.1\r\nHost: h:1\r\nTransfer-Encoding: chunked\r\n\r\n"),
     .rc = E(TRANSFER_ENCODING), .status = 400},
    {"CONNECT with body", R("CONNECT h:1 HTTP/1.1\r\nHost: h:1\r\nContent-Length: 5\r\n\r\n"),
     .rc = E(CONTENT_LENGTH), .status = 400},

    /* ---- invalid: line endings and field syntax ---- */
    {"bare CR in value", R(H1 "Host: a\r\nX: a\rb\r\n\r\n"), .rc = E(LINE_ENDING), .status = 400},
    {"bare CR in request line", R("GET /\r HTTP/1.1\r\nHost: a\r\n\r\n"), .rc = E(LINE_ENDING),
     .status = 400},
    {"bare CR after version", R("GET / HTTP/1.1\rX\r\nHost: a\r\n\r\n"), .rc = E(LINE_ENDING),
     .status = 400},
    {"bare CR in name", R(H1 "Host: a\r\nX\rY: b\r\n\r\n"), .rc = E(LINE_ENDING), .status = 400},
    {"bare LF in fields", R(H1 "Host: a\nX: b\r\n\r\n"), .rc = E(LINE_ENDING), .status = 400},
    {"bare LF request line", R("GET / HTTP/1.1\nHost: a\r\n\r\n"), .rc = E(LINE_ENDING),
     .status = 400},
    {"bare LF blank line", R(H1 "Host: a\r\n\n"), .rc = E(LINE_ENDING), .status = 400},
    {"bare LF leading line", R("\n" H1 "Host: a\r\n\r\n"), .rc = E(LINE_ENDING), .status = 400},
    {"obs-fold", R(H1 "Host: a\r\nX: a\r\n b\r\n\r\n"), .rc = E(OBS_FOLD), .status = 400},
    {"obs-fold tab", R(H1 "Host: a\r\nX: a\r\n\tb\r\n\r\n"), .rc = E(OBS_FOLD), .status = 400},
    {"whitespace before first field", R(H1 " Host: a\r\n\r\n"), .rc = E(OBS_FOLD), .status = 400},
    {"NUL in value", R(H1 "Host: a\r\nX: a\0b\r\n\r\n"), .rc = E(HEADER_VALUE), .status = 400},
    {"control byte in value",
     R(H1 "Host: a\r\nX: a\x01"
          "b\r\n\r\n"),
     .rc = E(HEADER_VALUE), .status = 400},
    {"DEL in value", R(H1 "Host: a\r\nX: a\x7f\r\n\r\n"), .rc = E(HEADER_VALUE), .status = 400},
    {"DEL deep in value",
     R(H1 "Host: a\r\nX: 0123456789abcdef\x7f"
          "0123456789abcdef\r\n\r\n"),
     .rc = E(HEADER_VALUE), .status = 400},
    {"NUL deep in value",
     R(H1 "Host: a\r\nX: 0123456789abcdef\0"
          "0123456789abcdef\r\n\r\n"),
     .rc = E(HEADER_VALUE), .status = 400},
    {"NUL in name", R(H1 "Host: a\r\nX\0Y: b\r\n\r\n"), .rc = E(HEADER_NAME), .status = 400},
    {"space before colon", R(H1 "Host: a\r\nX-A : b\r\n\r\n"), .rc = E(HEADER_NAME), .status = 400},
    {"tab before colon", R(H1 "Host: a\r\nContent-Length\t: 5\r\n\r\n"), .rc = E(HEADER_NAME),
     .status = 400},
    {"empty field name", R(H1 "Host: a\r\n: b\r\n\r\n"), .rc = E(HEADER_NAME), .status = 400},
    {"field without colon", R(H1 "Host: a\r\nNoColon\r\n\r\n"), .rc = E(HEADER_NAME),
     .status = 400},
    {"invalid byte in name", R(H1 "Host: a\r\nX(Y: b\r\n\r\n"), .rc = E(HEADER_NAME),
     .status = 400},
    {"bad Connection option", R(H1 "Host: a\r\nConnection: close;x\r\n\r\n"), .rc = E(CONNECTION),
     .status = 400},

    /* ---- invalid: request line ---- */
    {"invalid method byte", R("G@T / HTTP/1.1\r\nHost: a\r\n\r\n"), .rc = E(METHOD), .status = 400},
    {"leading space", R(" GET / HTTP/1.1\r\nHost: a\r\n\r\n"), .rc = E(METHOD), .status = 400},
    {"method only", R("GET\r\nHost: a\r\n\r\n"), .rc = E(SYNTAX), .status = 400},
    {"fragment in target", R("GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n"), .rc = E(TARGET),
     .status = 400},
    {"space in target", R("GET /a b HTTP/1.1\r\nHost: a\r\n\r\n"), .rc = E(SYNTAX), .status = 400},
    {"tab in target", R("GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n"), .rc = E(TARGET), .status = 400},
    {"control byte in target", R("GET /a\x01 HTTP/1.1\r\nHost: a\r\n\r\n"), .rc = E(TARGET),
     .status = 400},
    {"non-ASCII target", R("GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n"), .rc = E(TARGET),
     .status = 400},
    {"non-ASCII deep in target",
     R("GET /0123456789abcdef\xc3\xa9"
       "0123456789abcdef HTTP/1.1\r\nHost: a\r\n\r\n"),
     .rc = E(TARGET), .status = 400},
    {"fragment deep in target",
     R("GET /0123456789abcdef#0123456789abcdef HTTP/1.1\r\nHost: a\r\n\r\n"), .rc = E(TARGET),
     .status = 400},
    {"DEL deep in target",
     R("GET /0123456789abcdef\x7f"
       "0123456789abcdef HTTP/1.1\r\nHost: a\r\n\r\n"),
     .rc = E(TARGET), .status = 400},
    {"double space", R("GET  / HTTP/1.1\r\nHost: a\r\n\r\n"), .rc = E(TARGET), .status = 400},
    {"asterisk with GET", R("GET * HTTP/1.1\r\nHost: a\r\n\r\n"), .rc = E(TARGET), .status = 400},
    {"authority-form with GET", R("GET a.example:80 HTTP/1.1\r\nHost: a\r\n\r\n"), .rc = E(TARGET),
     .status = 400},
    {"CONNECT origin-form", R("CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n"), .rc = E(TARGET),
     .status = 400},
    {"CONNECT without port", R("CONNECT a.example HTTP/1.1\r\nHost: a\r\n\r\n"), .rc = E(TARGET),
     .status = 400},
    {"absolute-form userinfo", R("GET http://u@h/ HTTP/1.1\r\nHost: h\r\n\r\n"), .rc = E(TARGET),
     .status = 400},
    {"absolute-form ftp", R("GET ftp://h/ HTTP/1.1\r\nHost: h\r\n\r\n"), .rc = E(TARGET),
     .status = 400},
    {"absolute-form empty host", R("GET http:///x HTTP/1.1\r\nHost: h\r\n\r\n"), .rc = E(TARGET),
     .status = 400},
    {"HTTP/0.9", R("GET /\r\n\r\n"), .rc = E(VERSION), .status = 505},
    {"HTTP/2.0", R("GET / HTTP/2.0\r\nHost: a\r\n\r\n"), .rc = E(VERSION), .status = 505},
    {"HTTP/2 preface", R("PRI * HTTP/2.0\r\n\r\n"), .rc = E(VERSION), .status = 505},
    {"HTTP/1.2", R("GET / HTTP/1.2\r\nHost: a\r\n\r\n"), .rc = E(VERSION), .status = 505},
    {"HTTP/0.9 explicit", R("GET / HTTP/0.9\r\nHost: a\r\n\r\n"), .rc = E(VERSION), .status = 505},
    {"lowercase version", R("GET / http/1.1\r\nHost: a\r\n\r\n"), .rc = E(SYNTAX), .status = 400},
    {"space after version", R("GET / HTTP/1.1 \r\nHost: a\r\n\r\n"), .rc = E(SYNTAX),
     .status = 400},
    {"HTTP/1.10", R("GET / HTTP/1.10\r\nHost: a\r\n\r\n"), .rc = E(SYNTAX), .status = 400},

    /* ---- invalid: Host ---- */
    {"missing Host", R(H1 "X: a\r\n\r\n"), .rc = E(HOST), .status = 400},
    {"duplicate Host", R(H1 "Host: a\r\nHost: a\r\n\r\n"), .rc = E(HOST), .status = 400},
    {"duplicate Host HTTP/1.0", R("GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n"), .rc = E(HOST),
     .status = 400},
    {"Host with space", R(H1 "Host: a b\r\n\r\n"), .rc = E(HOST), .status = 400},
    {"Host with userinfo", R(H1 "Host: u@a\r\n\r\n"), .rc = E(HOST), .status = 400},
    {"Host bad port", R(H1 "Host: a:99999\r\n\r\n"), .rc = E(HOST), .status = 400},
    {"Host bad pct", R(H1 "Host: a%4\r\n\r\n"), .rc = E(HOST), .status = 400},

    /* ---- invalid: limits ---- */
    {"request line too long", R("GET /0123456789012345678901234567 HTTP/1.1\r\nHost: a\r\n\r\n"),
     .lim = &small_limits, .rc = E(LINE_TOO_LONG), .status = 414},
    {"head too large",
     R(H1 "Host: a\r\nX: 01234567890123456789012345678901234567890123456789012345678901234567890123"
          "4567890123456789012345678901234567890123456789012345678901234567890123456789012345678"
          "9012345678901234567890123456789012345678901234567890123456789abcdefghij\r\n\r\n"),
     .lim = &small_limits, .rc = E(HEAD_TOO_LARGE), .status = 431},
    {"too many headers", R(H1 "Host: a\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n"),
     .lim = &small_limits, .rc = E(TOO_MANY_HEADERS), .status = 431},
    {"five leading CRLFs", R("\r\n\r\n\r\n\r\n\r\n" H1 "Host: a\r\n\r\n"), .rc = E(SYNTAX),
     .status = 400},
};

#define NREQ (sizeof(req_cases) / sizeof(req_cases[0]))

/* Copies the string s (without its NUL) to dst; the tests build raw, unterminated buffers. */
static size_t put_str(char *dst, const char *s)
{
    size_t n = 0;
    for (; s[n] != '\0'; n++)
        dst[n] = s[n];
    return n;
}

static guard_t guard;

static int setup(void **state)
{
    (void)state;
    return guard_init(&guard);
}

static int teardown(void **state)
{
    (void)state;
    guard_free(&guard);
    return 0;
}

static void expect_span(const char *what, const char *name, rm_http1_span_t got, const char *want)
{
    if (want == NULL)
        return;
    if (got.len != strlen(want) || (got.len != 0 && memcmp(got.ptr, want, got.len) != 0)) {
        print_error("%s: %s is '%.*s', want '%s'\n", name, what, (int)got.len,
                    got.ptr ? got.ptr : "", want);
        fail();
    }
}

/* Checks one finished parse of case c over buf (a copy of c->raw). */
static void check_request(const req_case_t *c, const char *buf, int rc,
                          const rm_http1_request_t *req)
{
    if (c->rc != OK) {
        if (rc != c->rc || req->error_status != c->status || req->error_reason == NULL) {
            print_error("%s: rc %d status %d (%s), want rc %d status %d\n", c->name, rc,
                        req->error_status, req->error_reason ? req->error_reason : "-", c->rc,
                        c->status);
            fail();
        }
        return;
    }
    if (rc != (int)c->len) {
        print_error("%s: rc %d (%s), want %zu\n", c->name, rc,
                    req->error_reason ? req->error_reason : "-", c->len);
        fail();
    }
    if (req->method != c->method || req->body != c->body || req->content_length != c->cl ||
        (req->flags & c->set) != c->set || (req->flags & c->clear) != 0 ||
        req->num_headers != c->nh || req->target_form != c->form) {
        print_error("%s: method %d body %d cl %llu flags %#x nh %zu form %d\n", c->name,
                    req->method, req->body, (unsigned long long)req->content_length, req->flags,
                    req->num_headers, req->target_form);
        fail();
    }
    int minor = strstr(c->raw, "HTTP/1.0\r\n") != NULL ? 0 : 1;
    assert_int_equal(req->minor_version, minor);
    /* Every span must point inside this buffer. */
    assert_true(req->method_name.ptr >= buf && req->target.ptr + req->target.len <= buf + c->len);
    for (size_t i = 0; i < req->num_headers; i++) {
        assert_true(req->headers[i].name.ptr >= buf);
        assert_true(req->headers[i].value.ptr + req->headers[i].value.len <= buf + c->len);
    }
    expect_span("authority", c->name, req->authority, c->authority);
    expect_span("path", c->name, req->path, c->path);
}

static int parse_req(const char *buf, size_t len, rm_http1_request_t *req, rm_http1_header_t *hdrs,
                     const rm_http1_limits_t *lim)
{
    rm_http1_request_init(req, hdrs, MAX_HDRS);
    return rm_http1_parse_request(buf, len, req, lim);
}

static void test_request_table(void **state)
{
    (void)state;
    rm_http1_header_t hdrs[MAX_HDRS];
    rm_http1_request_t req;

    for (size_t i = 0; i < NREQ; i++) {
        const req_case_t *c = &req_cases[i];
        int rc = parse_req(c->raw, c->len, &req, hdrs, c->lim);
        check_request(c, c->raw, rc, &req);
        /* The last byte against a PROT_NONE page: any over-read crashes the test. */
        const char *g = guard_place(&guard, c->raw, c->len);
        rc = parse_req(g, c->len, &req, hdrs, c->lim);
        check_request(c, g, rc, &req);
    }
}

/* Every prefix, each parsed fresh against the guard page, then fed incrementally to one state. */
static void test_request_splits(void **state)
{
    (void)state;
    rm_http1_header_t hdrs[MAX_HDRS];
    rm_http1_request_t req;

    for (size_t i = 0; i < NREQ; i++) {
        const req_case_t *c = &req_cases[i];
        for (size_t n = 0; n < c->len; n++) {
            const char *g = guard_place(&guard, c->raw, n);
            int rc = parse_req(g, n, &req, hdrs, c->lim);
            if (!(rc == RM_HTTP1_INCOMPLETE || (c->rc != OK && rc == c->rc))) {
                print_error("%s: prefix %zu gave %d (%s)\n", c->name, n, rc,
                            req.error_reason ? req.error_reason : "-");
                fail();
            }
        }
        /* Incremental: one request struct, a growing buffer. The first answer that is not
         * INCOMPLETE must be the answer for the whole input. */
        rm_http1_request_init(&req, hdrs, MAX_HDRS);
        int rc = RM_HTTP1_INCOMPLETE;
        size_t n = 0;
        while (rc == RM_HTTP1_INCOMPLETE && n < c->len) {
            n++;
            rc = rm_http1_parse_request(guard_place(&guard, c->raw, n), n, &req, c->lim);
        }
        if (c->rc == OK)
            assert_int_equal(n, c->len);
        check_request(c, guard.base + guard.area - n, rc, &req);
    }
}

/* The scan resumes at the unterminated line, so a byte-at-a-time head is scanned once. */
static void test_request_scan_resumes(void **state)
{
    (void)state;
    static const char raw[] = "GET / HTTP/1.1\r\nHost: a\r\nX-Long: abc";
    rm_http1_header_t hdrs[8];
    rm_http1_request_t req;

    rm_http1_request_init(&req, hdrs, 8);
    assert_int_equal(rm_http1_parse_request(raw, sizeof(raw) - 1, &req, NULL), RM_HTTP1_INCOMPLETE);
    assert_int_equal(req.scan.pos, strstr(raw, "X-Long") - raw);
    assert_int_equal(req.scan.fields, 1);
}

/* Slowloris cost: while the head is incomplete, bytes already scanned are never read again.
 * The first page holds whole lines only; it is made PROT_NONE before more bytes are offered,
 * so any re-read crashes. */
static void test_request_scan_never_rereads(void **state)
{
    (void)state;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    char *buf = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(buf != MAP_FAILED);
    rm_http1_header_t hdrs[MAX_HDRS];
    rm_http1_request_t req;

    /* Page 1: request line, Host, then one padding field that ends exactly at the page end. */
    size_t n = put_str(buf, "GET / HTTP/1.1\r\nHost: a\r\nX-Pad: ");
    memset(buf + n, 'p', page - n - 2);
    put_str(buf + page - 2, "\r\n");
    rm_http1_request_init(&req, hdrs, MAX_HDRS);
    assert_int_equal(rm_http1_parse_request(buf, page, &req, NULL), RM_HTTP1_INCOMPLETE);
    assert_int_equal(req.scan.pos, page);

    /* Page 2 arrives a byte at a time while page 1 is unreadable. */
    static const char more[] = "X-More: 1\r\nX-Even-More: 2\r\n\r";
    memcpy(buf + page, more, sizeof(more) - 1);
    assert_int_equal(mprotect(buf, page, PROT_NONE), 0);
    for (size_t k = 1; k < sizeof(more); k++)
        assert_int_equal(rm_http1_parse_request(buf, page + k, &req, NULL), RM_HTTP1_INCOMPLETE);
    assert_int_equal(req.scan.fields, 4);

    /* The final LF completes the head; only now is the whole head parsed. */
    assert_int_equal(mprotect(buf, page, PROT_READ | PROT_WRITE), 0);
    buf[page + sizeof(more) - 1] = '\n';
    assert_int_equal(rm_http1_parse_request(buf, page + sizeof(more), &req, NULL),
                     (int)(page + sizeof(more)));
    assert_int_equal(req.num_headers, 4);
    munmap(buf, 2 * page);
}

/* The state holds offsets, so the caller may move its buffer between calls. */
static void test_request_buffer_moves(void **state)
{
    (void)state;
    static const char raw[] = "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc";
    char a[sizeof(raw)], b[sizeof(raw)];
    rm_http1_header_t hdrs[8];
    rm_http1_request_t req;

    memcpy(a, raw, sizeof(raw));
    memcpy(b, raw, sizeof(raw));
    rm_http1_request_init(&req, hdrs, 8);
    assert_int_equal(rm_http1_parse_request(a, 30, &req, NULL), RM_HTTP1_INCOMPLETE);
    int rc = rm_http1_parse_request(b, sizeof(raw) - 1, &req, NULL);
    assert_int_equal(rc, sizeof(raw) - 1 - 3);
    assert_ptr_equal(req.method_name.ptr, b);
    assert_int_equal(req.content_length, 3);
    /* Asking again gives the same answer. */
    assert_int_equal(rm_http1_parse_request(b, sizeof(raw) - 1, &req, NULL), rc);
}

/* The headers array is a hard limit too. */
static void test_request_headers_cap(void **state)
{
    (void)state;
    static const char raw[] = "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n";
    rm_http1_header_t hdrs[2];
    rm_http1_request_t req;

    rm_http1_request_init(&req, hdrs, 2);
    assert_int_equal(rm_http1_parse_request(raw, sizeof(raw) - 1, &req, NULL),
                     RM_HTTP1_E_TOO_MANY_HEADERS);
    assert_int_equal(req.error_status, 431);
}

/* 414 and 431 with the default limits, including while the head is still incomplete. */
static void test_request_default_limits(void **state)
{
    (void)state;
    static char buf[RM_HTTP1_DEFAULT_MAX_HEAD_BYTES + 1024];
    rm_http1_header_t hdrs[MAX_HDRS];
    rm_http1_request_t req;

    /* A request line of exactly the limit is fine. */
    size_t n = 0;
    put_str(buf, "GET /");
    n = 5;
    size_t tail = strlen(" HTTP/1.1");
    memset(buf + n, 'a', RM_HTTP1_DEFAULT_MAX_REQUEST_LINE - n - tail);
    n = RM_HTTP1_DEFAULT_MAX_REQUEST_LINE - tail;
    put_str(buf + n, " HTTP/1.1\r\nHost: a\r\n\r\n");
    n += 22;
    assert_int_equal(parse_req(buf, n, &req, hdrs, NULL), (int)n);

    /* One byte more is 414. */
    memmove(buf + 6, buf + 5, n - 5);
    n++;
    assert_int_equal(parse_req(buf, n, &req, hdrs, NULL), RM_HTTP1_E_LINE_TOO_LONG);
    assert_int_equal(req.error_status, 414);
    /* ... and is caught before the line ends. */
    assert_int_equal(parse_req(buf, RM_HTTP1_DEFAULT_MAX_REQUEST_LINE + 2, &req, hdrs, NULL),
                     RM_HTTP1_E_LINE_TOO_LONG);

    /* Many small fields: 431 at the 101st field line, long before the byte limit. */
    put_str(buf, "GET / HTTP/1.1\r\nHost: a\r\n");
    n = 25;
    while (n + 20 < sizeof(buf)) {
        put_str(buf + n, "X-Pad: 0123456789\r\n");
        n += 19;
    }
    assert_int_equal(parse_req(buf, n, &req, hdrs, NULL), RM_HTTP1_E_TOO_MANY_HEADERS);
    assert_int_equal(req.error_status, 431);

    /* Few huge fields: 431 once the head reaches the byte limit without its blank line. */
    n = 25;
    put_str(buf + n, "X-Big: ");
    n += 7;
    memset(buf + n, 'b', sizeof(buf) - n);
    assert_int_equal(parse_req(buf, RM_HTTP1_DEFAULT_MAX_HEAD_BYTES - 1, &req, hdrs, NULL),
                     RM_HTTP1_INCOMPLETE);
    assert_int_equal(parse_req(buf, RM_HTTP1_DEFAULT_MAX_HEAD_BYTES, &req, hdrs, NULL),
                     RM_HTTP1_E_HEAD_TOO_LARGE);
    assert_int_equal(req.error_status, 431);
    /* A head of exactly the limit is accepted. */
    size_t end = RM_HTTP1_DEFAULT_MAX_HEAD_BYTES;
    put_str(buf + end - 4, "\r\n\r\n");
    assert_int_equal(parse_req(buf, end, &req, hdrs, NULL), (int)end);
    assert_int_equal(req.headers[1].value.len, end - 4 - 32);
}

static void test_request_fields(void **state)
{
    (void)state;
    static const char raw[] = "GET /a HTTP/1.1\r\nHost: h\r\nX-A:  v1 \r\nx-b:v2\r\n\r\n";
    rm_http1_header_t hdrs[8];
    rm_http1_request_t req;

    assert_int_equal(parse_req(raw, sizeof(raw) - 1, &req, hdrs, NULL), sizeof(raw) - 1);
    assert_int_equal(req.num_headers, 3);
    assert_int_equal(req.headers[1].name.len, 3);
    assert_memory_equal(req.headers[1].name.ptr, "X-A", 3);
    assert_int_equal(req.headers[1].value.len, 2);
    assert_memory_equal(req.headers[1].value.ptr, "v1", 2);
    assert_memory_equal(req.headers[2].value.ptr, "v2", 2);
    assert_int_equal(rm_http1_header_find(req.headers, req.num_headers, "X-B", 3), 2);
    assert_int_equal(rm_http1_header_find(req.headers, req.num_headers, "X-C", 3), -1);
    assert_int_equal(req.host.len, 1);
    assert_string_equal(rm_http1_method_name(req.method), "GET");
    assert_null(rm_http1_method_name(RM_HTTP1_METHOD_OTHER));
}

static void test_request_bad_args(void **state)
{
    (void)state;
    rm_http1_request_t req;

    assert_int_equal(rm_http1_parse_request("x", 1, NULL, NULL), RM_HTTP1_E_ARG);
    rm_http1_request_init(&req, NULL, 0);
    assert_int_equal(rm_http1_parse_request(NULL, 5, &req, NULL), RM_HTTP1_E_ARG);
    assert_int_equal(rm_http1_parse_request(NULL, 0, &req, NULL), RM_HTTP1_INCOMPLETE);
    /* No headers array: any field line is over the limit. */
    assert_int_equal(rm_http1_parse_request("GET / HTTP/1.0\r\n\r\n", 18, &req, NULL), 18);
    rm_http1_request_init(&req, NULL, 0);
    assert_int_equal(rm_http1_parse_request("GET / HTTP/1.1\r\nHost: a\r\n\r\n", 27, &req, NULL),
                     RM_HTTP1_E_TOO_MANY_HEADERS);
    for (int code = -30; code <= 2; code++)
        assert_non_null(rm_http1_strerror(code));
}

/* ------------------------------------------------------------------------------------------ */

typedef struct resp_case {
    const char *name;
    const char *raw;
    size_t len;
    int req_method;
    int rc;
    int code; /* expected status code */
    rm_http1_body_t body;
    uint64_t cl;
    unsigned set;
    unsigned clear;
} resp_case_t;

static const resp_case_t resp_cases[] = {
    /* ---- valid ---- */
    {"200 Content-Length", R("HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n"), M(GET), OK, 200,
     CL_IS(12), .set = KA},
    {"200 chunked", R("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), M(GET), OK, 200,
     .body = B(CHUNKED), .set = KA},
    {"200 until close", R("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n"), M(GET), OK, 200,
     .body = B(UNTIL_CLOSE), .clear = KA},
    {"204", R("HTTP/1.1 204 No Content\r\n\r\n"), M(DELETE), OK, 204, .body = B(NONE), .set = KA},
    {"304 with Content-Length", R("HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n"),
     M(GET), OK, 304, .body = B(NONE), .set = KA},
    {"HEAD response", R("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"), M(HEAD), OK, 200,
     .body = B(NONE), .set = KA},
    {"HEAD chunked", R("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), M(HEAD), OK, 200,
     .body = B(NONE)},
    {"100 Continue", R("HTTP/1.1 100 Continue\r\n\r\n"), M(POST), OK, 100, .body = B(NONE)},
    {"103 Early Hints", R("HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"),
     M(GET), OK, 103, .body = B(NONE)},
    {"101 upgrade",
     R("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"),
     M(GET), OK, 101, .body = B(TUNNEL), .set = RM_HTTP1_F_UPGRADE | RM_HTTP1_F_CONN_UPGRADE,
     .clear = KA},
    {"CONNECT 200", R("HTTP/1.1 200 Connection Established\r\n\r\n"), M(CONNECT), OK, 200,
     .body = B(TUNNEL), .clear = KA},
    {"CONNECT 204", R("HTTP/1.1 204 No Content\r\n\r\n"), M(CONNECT), OK, 204, .body = B(TUNNEL),
     .clear = KA},
    {"CONNECT 407", R("HTTP/1.1 407 Proxy Auth\r\nContent-Length: 4\r\n\r\n"), M(CONNECT), OK, 407,
     CL_IS(4)},
    {"HTTP/1.0 response", R("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n"), M(GET), OK, 200,
     CL_IS(1), .clear = KA},
    {"HTTP/1.0 keep-alive",
     R("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n"), M(GET), OK, 200,
     CL_IS(1), .set = KA},
    {"no reason phrase", R("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n"), M(GET), OK, 200, CL_IS(0)},
    {"empty reason phrase", R("HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n"), M(GET), OK, 404,
     CL_IS(0)},
    {"Connection close", R("HTTP/1.1 500 Oops\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"),
     M(GET), OK, 500, CL_IS(0), .clear = KA},
    {"obs-text reason", R("HTTP/1.1 200 \xc3\xa9t\xc3\xa9\r\nContent-Length: 0\r\n\r\n"), M(GET),
     OK, 200, CL_IS(0)},
    {"leading CRLF", R("\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), M(GET), OK, 200,
     CL_IS(0)},

    /* ---- invalid ---- */
    {"CL and TE", R("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"),
     M(GET), E(CL_AND_TE)},
    {"CL and TE on 204",
     R("HTTP/1.1 204 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"), M(GET),
     E(CL_AND_TE)},
    {"TE gzip", R("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"), M(GET),
     E(TRANSFER_ENCODING)},
    {"TE gzip, chunked", R("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"), M(GET),
     E(TE_UNSUPPORTED)},
    {"TE on HTTP/1.0", R("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), M(GET),
     E(TRANSFER_ENCODING)},
    {"duplicate CL", R("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"), M(GET),
     E(CONTENT_LENGTH)},
    {"HTTP/2.0", R("HTTP/2.0 200 OK\r\n\r\n"), M(GET), E(VERSION)},
    {"status 99", R("HTTP/1.1 099 X\r\n\r\n"), M(GET), E(STATUS)},
    {"status 600", R("HTTP/1.1 600 X\r\n\r\n"), M(GET), E(STATUS)},
    {"status two digits", R("HTTP/1.1 20 OK\r\n\r\n"), M(GET), E(STATUS)},
    {"status four digits", R("HTTP/1.1 2000 OK\r\n\r\n"), M(GET), E(STATUS)},
    {"no space after version", R("HTTP/1.1200 OK\r\n\r\n"), M(GET), E(SYNTAX)},
    {"NUL in reason", R("HTTP/1.1 200 O\0K\r\n\r\n"), M(GET), E(STATUS)},
    {"bare LF", R("HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n"), M(GET), E(LINE_ENDING)},
    {"bare CR in reason", R("HTTP/1.1 200 O\rK\r\n\r\n"), M(GET), E(LINE_ENDING)},
    {"obs-fold", R("HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n"), M(GET),
     E(OBS_FOLD)},
    {"space before colon", R("HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n"), M(GET),
     E(HEADER_NAME)},
};

#define NRESP (sizeof(resp_cases) / sizeof(resp_cases[0]))

static void check_response(const resp_case_t *c, int rc, const rm_http1_response_t *resp)
{
    if (c->rc != OK) {
        if (rc != c->rc || resp->error_status != 502 || resp->error_reason == NULL) {
            print_error("%s: rc %d status %d (%s), want rc %d\n", c->name, rc, resp->error_status,
                        resp->error_reason ? resp->error_reason : "-", c->rc);
            fail();
        }
        return;
    }
    if (rc != (int)c->len || resp->status != c->code || resp->body != c->body ||
        resp->content_length != c->cl || (resp->flags & c->set) != c->set ||
        (resp->flags & c->clear) != 0) {
        print_error("%s: rc %d (%s) status %d body %d cl %llu flags %#x\n", c->name, rc,
                    resp->error_reason ? resp->error_reason : "-", resp->status, resp->body,
                    (unsigned long long)resp->content_length, resp->flags);
        fail();
    }
}

static int parse_resp(const char *buf, size_t len, rm_http1_response_t *resp,
                      rm_http1_header_t *hdrs, int method)
{
    rm_http1_response_init(resp, hdrs, MAX_HDRS);
    return rm_http1_parse_response(buf, len, resp, NULL, method);
}

static void test_response_table(void **state)
{
    (void)state;
    rm_http1_header_t hdrs[MAX_HDRS];
    rm_http1_response_t resp;

    for (size_t i = 0; i < NRESP; i++) {
        const resp_case_t *c = &resp_cases[i];
        check_response(c, parse_resp(c->raw, c->len, &resp, hdrs, c->req_method), &resp);
        const char *g = guard_place(&guard, c->raw, c->len);
        check_response(c, parse_resp(g, c->len, &resp, hdrs, c->req_method), &resp);

        for (size_t n = 0; n < c->len; n++) {
            g = guard_place(&guard, c->raw, n);
            int rc = parse_resp(g, n, &resp, hdrs, c->req_method);
            if (!(rc == RM_HTTP1_INCOMPLETE || (c->rc != OK && rc == c->rc))) {
                print_error("%s: prefix %zu gave %d\n", c->name, n, rc);
                fail();
            }
        }
        rm_http1_response_init(&resp, hdrs, MAX_HDRS);
        int rc = RM_HTTP1_INCOMPLETE;
        size_t n = 0;
        while (rc == RM_HTTP1_INCOMPLETE && n < c->len) {
            n++;
            rc = rm_http1_parse_response(guard_place(&guard, c->raw, n), n, &resp, NULL,
                                         c->req_method);
        }
        check_response(c, rc, &resp);
    }
}

static void test_response_fields(void **state)
{
    (void)state;
    static const char raw[] = "HTTP/1.1 404 Not Found\r\nServer: x\r\nContent-Length: 9\r\n\r\n";
    rm_http1_header_t hdrs[8];
    rm_http1_response_t resp;

    assert_int_equal(parse_resp(raw, sizeof(raw) - 1, &resp, hdrs, RM_HTTP1_METHOD_GET),
                     sizeof(raw) - 1);
    assert_int_equal(resp.minor_version, 1);
    assert_int_equal(resp.status_text.len, 9);
    assert_memory_equal(resp.status_text.ptr, "Not Found", 9);
    assert_int_equal(resp.num_headers, 2);
    assert_int_equal(resp.content_length, 9);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_table),
        cmocka_unit_test(test_request_splits),
        cmocka_unit_test(test_request_scan_resumes),
        cmocka_unit_test(test_request_scan_never_rereads),
        cmocka_unit_test(test_request_buffer_moves),
        cmocka_unit_test(test_request_headers_cap),
        cmocka_unit_test(test_request_default_limits),
        cmocka_unit_test(test_request_fields),
        cmocka_unit_test(test_request_bad_args),
        cmocka_unit_test(test_response_table),
        cmocka_unit_test(test_response_fields),
    };
    printf("http1_test: %zu request cases, %zu response cases\n", NREQ, NRESP);
    return cmocka_run_group_tests(tests, setup, teardown);
}
