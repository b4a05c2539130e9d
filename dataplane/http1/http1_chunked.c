/* dataplane/http1/http1_chunked.c — resumable decoder for the chunked transfer coding
 * (RFC 9112 7.1): yields data spans that point into the input and reports completion.
 *
 * Framing bytes (size lines, extensions, trailers) go through a byte-at-a-time switch, nginx
 * style, so any split of the input is fine and no state points into a previous buffer. Data
 * bytes are never touched one by one: each call hands out the largest span it can.
 */
#include <string.h>

#include "dataplane/http1/http1.h"
#include "dataplane/http1/http1-int.h"

enum {
    CS_SIZE_FIRST = 0,  /* first hex digit of chunk-size */
    CS_SIZE,            /* more hex digits, then ';', BWS or CR */
    CS_SIZE_WS,         /* BWS after the size: only ';' may follow */
    CS_EXT_NAME_PRE,    /* after ';': BWS, then a name */
    CS_EXT_NAME,        /* chunk-ext-name */
    CS_EXT_NAME_WS,     /* BWS after a name: '=' or ';' */
    CS_EXT_VALUE_PRE,   /* after '=': BWS, then a token or a quoted-string */
    CS_EXT_TOKEN,       /* token value */
    CS_EXT_QUOTED,      /* inside a quoted-string */
    CS_EXT_QUOTED_ESC,  /* after a backslash in a quoted-string */
    CS_EXT_AFTER_QUOTE, /* after the closing quote: ';', CR or BWS */
    CS_EXT_VALUE_WS,    /* BWS after a value: only ';' may follow */
    CS_SIZE_LF,         /* the LF of the size line */
    CS_DATA,            /* remaining data bytes */
    CS_DATA_CR,         /* the CRLF after chunk data */
    CS_DATA_LF,
    CS_TRAILER_START, /* start of a trailer field line, or the final CRLF */
    CS_TRAILER_NAME,
    CS_TRAILER_VALUE,
    CS_TRAILER_LF,
    CS_FINAL_LF,
    CS_DONE,
    CS_ERROR,
};

void rm_http1_chunked_init(rm_http1_chunked_t *st)
{
    memset(st, 0, sizeof(*st));
    st->state = CS_SIZE_FIRST;
    st->max_ext_bytes = RM_HTTP1_DEFAULT_MAX_CHUNK_EXT;
    st->max_trailer_bytes = RM_HTTP1_DEFAULT_MAX_TRAILER;
}

/* qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text (RFC 9110 5.6.4). */
static inline int qdtext(unsigned c)
{
    return rm__http1_vchar[c] && c != '"' && c != '\\';
}

/* 1 if the lowercased trailer name in st->name may not appear in trailers: framing and routing
 * fields (RFC 9110 6.5.1). Rejected rather than dropped: a sender that puts them there is either
 * broken or probing for a hop that merges trailers into the head. */
static int trailer_forbidden(const rm_http1_chunked_t *st)
{
    switch (st->name_len) {
    case 4:
        return memcmp(st->name, "host", 4) == 0;
    case 14:
        return memcmp(st->name, "content-length", 14) == 0;
    case 17:
        return memcmp(st->name, "transfer-encoding", 17) == 0;
    default:
        return 0;
    }
}

#define CHUNK_FAIL(code, why)                                                                      \
    do {                                                                                           \
        st->state = CS_ERROR;                                                                      \
        st->error = (code);                                                                        \
        st->error_reason = (why);                                                                  \
        *consumed = (size_t)(p - start) - 1;                                                       \
        return (code);                                                                             \
    } while (0)

int rm_http1_chunked_decode(rm_http1_chunked_t *st, const char *in, size_t len, size_t *consumed,
                            rm_http1_span_t *data_out)
{
    if (st == NULL || consumed == NULL || data_out == NULL || (in == NULL && len != 0))
        return RM_HTTP1_E_ARG;
    const unsigned char *start = RM__U8(in);
    const unsigned char *p = start;
    const unsigned char *end = start + len;

    *consumed = 0;
    data_out->ptr = NULL;
    data_out->len = 0;
    if (st->state == CS_ERROR)
        return st->error;
    if (st->state == CS_DONE)
        return RM_HTTP1_CHUNKED_DONE;

    while (p < end) {
        if (st->state == CS_DATA) {
            size_t avail = (size_t)(end - p);
            size_t n = st->remaining < avail ? (size_t)st->remaining : avail;
            data_out->ptr = (const char *)p;
            data_out->len = n;
            st->remaining -= n;
            p += n;
            if (st->remaining == 0)
                st->state = CS_DATA_CR;
            *consumed = (size_t)(p - start);
            return RM_HTTP1_CHUNKED_DATA;
        }

        unsigned c = *p++;
        unsigned hex;
        if (st->state >= CS_TRAILER_START && ++st->trailer_bytes > st->max_trailer_bytes)
            CHUNK_FAIL(RM_HTTP1_E_TRAILER_TOO_LARGE, "trailer section too large");
        /* Extension bytes count from the first byte after the size up to, not including, CR. */
        if (st->state >= CS_SIZE_WS && st->state <= CS_EXT_VALUE_WS && c != '\r' &&
            ++st->count > st->max_ext_bytes)
            CHUNK_FAIL(RM_HTTP1_E_CHUNK_EXT, "chunk extensions too long");

        switch (st->state) {
        case CS_SIZE_FIRST:
            hex = rm__http1_hex[c];
            if (hex == 0)
                CHUNK_FAIL(RM_HTTP1_E_CHUNK_SIZE, "chunk size is not hex");
            st->remaining = hex - 1;
            st->count = 1;
            st->state = CS_SIZE;
            break;
        case CS_SIZE:
            hex = rm__http1_hex[c];
            if (hex != 0) {
                /* 16 digits fill 64 bits exactly, so counting digits is the overflow check. */
                if (++st->count > 16)
                    CHUNK_FAIL(RM_HTTP1_E_CHUNK_SIZE, "chunk size has more than 16 hex digits");
                st->remaining = (st->remaining << 4) | (hex - 1);
            } else if (c == '\r') {
                st->state = CS_SIZE_LF;
            } else if (c == ';') {
                st->count = 1;
                st->state = CS_EXT_NAME_PRE;
            } else if (c == ' ' || c == '\t') {
                st->count = 1;
                st->state = CS_SIZE_WS;
            } else {
                CHUNK_FAIL(RM_HTTP1_E_CHUNK_SIZE, "invalid byte in chunk size line");
            }
            break;
        case CS_SIZE_WS:
            if (c == ';')
                st->state = CS_EXT_NAME_PRE;
            else if (c != ' ' && c != '\t')
                CHUNK_FAIL(RM_HTTP1_E_CHUNK_EXT, "whitespace after chunk size without extension");
            break;
        case CS_EXT_NAME_PRE:
            if (rm__http1_tchar[c])
                st->state = CS_EXT_NAME;
            else if (c != ' ' && c != '\t')
                CHUNK_FAIL(RM_HTTP1_E_CHUNK_EXT, "chunk extension name is not a token");
            break;
        case CS_EXT_NAME:
            if (rm__http1_tchar[c])
                break;
            if (c == '=')
                st->state = CS_EXT_VALUE_PRE;
            else if (c == ';')
                st->state = CS_EXT_NAME_PRE;
            else if (c == '\r')
                st->state = CS_SIZE_LF;
            else if (c == ' ' || c == '\t')
                st->state = CS_EXT_NAME_WS;
            else
                CHUNK_FAIL(RM_HTTP1_E_CHUNK_EXT, "invalid byte in chunk extension name");
            break;
        case CS_EXT_NAME_WS:
            if (c == '=')
                st->state = CS_EXT_VALUE_PRE;
            else if (c == ';')
                st->state = CS_EXT_NAME_PRE;
            else if (c != ' ' && c != '\t')
                CHUNK_FAIL(RM_HTTP1_E_CHUNK_EXT, "invalid byte after chunk extension name");
            break;
        case CS_EXT_VALUE_PRE:
            if (c == '"')
                st->state = CS_EXT_QUOTED;
            else if (rm__http1_tchar[c])
                st->state = CS_EXT_TOKEN;
            else if (c != ' ' && c != '\t')
                CHUNK_FAIL(RM_HTTP1_E_CHUNK_EXT, "invalid chunk extension value");
            break;
        case CS_EXT_TOKEN:
            if (rm__http1_tchar[c])
                break;
            if (c == ';')
                st->state = CS_EXT_NAME_PRE;
            else if (c == '\r')
                st->state = CS_SIZE_LF;
            else if (c == ' ' || c == '\t')
                st->state = CS_EXT_VALUE_WS;
            else
                CHUNK_FAIL(RM_HTTP1_E_CHUNK_EXT, "invalid byte in chunk extension value");
            break;
        case CS_EXT_QUOTED:
            if (c == '"')
                st->state = CS_EXT_AFTER_QUOTE;
            else if (c == '\\')
                st->state = CS_EXT_QUOTED_ESC;
            else if (!qdtext(c))
                CHUNK_FAIL(RM_HTTP1_E_CHUNK_EXT, "invalid byte in quoted chunk extension");
            break;
        case CS_EXT_QUOTED_ESC:
            if (!rm__http1_vchar[c])
                CHUNK_FAIL(RM_HTTP1_E_CHUNK_EXT, "invalid quoted-pair in chunk extension");
            st->state = CS_EXT_QUOTED;
            break;
        case CS_EXT_AFTER_QUOTE:
            if (c == ';')
                st->state = CS_EXT_NAME_PRE;
            else if (c == '\r')
                st->state = CS_SIZE_LF;
            else if (c == ' ' || c == '\t')
                st->state = CS_EXT_VALUE_WS;
            else
                CHUNK_FAIL(RM_HTTP1_E_CHUNK_EXT, "invalid byte after quoted chunk extension");
            break;
        case CS_EXT_VALUE_WS:
            if (c == ';')
                st->state = CS_EXT_NAME_PRE;
            else if (c != ' ' && c != '\t')
                CHUNK_FAIL(RM_HTTP1_E_CHUNK_EXT, "whitespace after chunk extension value");
            break;
        case CS_SIZE_LF:
            if (c != '\n')
                CHUNK_FAIL(RM_HTTP1_E_CHUNK_SIZE, "CR not followed by LF in chunk size line");
            if (st->remaining == 0) {
                st->trailer_bytes = 0;
                st->state = CS_TRAILER_START;
            } else {
                st->state = CS_DATA;
            }
            break;
        case CS_DATA_CR:
            if (c != '\r')
                CHUNK_FAIL(RM_HTTP1_E_CHUNK_DATA, "chunk data not followed by CRLF");
            st->state = CS_DATA_LF;
            break;
        case CS_DATA_LF:
            if (c != '\n')
                CHUNK_FAIL(RM_HTTP1_E_CHUNK_DATA, "chunk data not followed by CRLF");
            st->state = CS_SIZE_FIRST;
            break;
        case CS_TRAILER_START:
            if (c == '\r') {
                st->state = CS_FINAL_LF;
            } else if (rm__http1_tchar[c]) {
                st->name[0] = (char)rm__http1_lower[c];
                st->name_len = 1;
                st->state = CS_TRAILER_NAME;
            } else if (c == ' ' || c == '\t') {
                CHUNK_FAIL(RM_HTTP1_E_TRAILER, "obs-fold in trailer section");
            } else {
                CHUNK_FAIL(RM_HTTP1_E_TRAILER, "invalid trailer field line");
            }
            break;
        case CS_TRAILER_NAME:
            if (rm__http1_tchar[c]) {
                if (st->name_len < sizeof(st->name))
                    st->name[st->name_len] = (char)rm__http1_lower[c];
                if (st->name_len <= sizeof(st->name))
                    st->name_len++;
            } else if (c == ':') {
                if (trailer_forbidden(st))
                    CHUNK_FAIL(RM_HTTP1_E_TRAILER, "framing or routing field in trailers");
                st->state = CS_TRAILER_VALUE;
            } else {
                CHUNK_FAIL(RM_HTTP1_E_TRAILER, "invalid byte in trailer field name");
            }
            break;
        case CS_TRAILER_VALUE:
            if (c == '\r')
                st->state = CS_TRAILER_LF;
            else if (!rm__http1_vchar[c])
                CHUNK_FAIL(RM_HTTP1_E_TRAILER, "control byte in trailer field value");
            break;
        case CS_TRAILER_LF:
            if (c != '\n')
                CHUNK_FAIL(RM_HTTP1_E_TRAILER, "bare CR in trailer section");
            st->state = CS_TRAILER_START;
            break;
        case CS_FINAL_LF:
            if (c != '\n')
                CHUNK_FAIL(RM_HTTP1_E_TRAILER, "bare CR at the end of the chunked body");
            st->state = CS_DONE;
            *consumed = (size_t)(p - start);
            return RM_HTTP1_CHUNKED_DONE;
        default:
            CHUNK_FAIL(RM_HTTP1_E_ARG, "corrupt decoder state");
        }
    }
    *consumed = len;
    return RM_HTTP1_INCOMPLETE;
}
