/* common/config/config.c — the public entry points: parse (YAML/JSON -> set), load (parse +
 * validate) and load_file. The work is done by tree.c, decode.c and validate.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/config/internal.h"

int rm_config_parse(const char *filename, const char *data, size_t len, Remora__V1__ConfigSet **out,
                    rm_config_diags_t *errors)
{
    rm_config_diags_t discard = {0};
    rm__tree_t tree;
    int rc;

    *out = NULL;
    if (data == NULL && len > 0)
        return -EINVAL;
    if (errors == NULL)
        errors = &discard;
    memset(&tree, 0, sizeof(tree));
    rc = rm__tree_load(&tree, filename, data ? data : "", len, errors);
    if (rc == 0)
        rc = rm__decode(&tree, filename, out, errors);
    rm__tree_free(&tree);
    rm_config_diags_free(&discard);
    return rc;
}

int rm_config_load(const char *filename, const char *data, size_t len,
                   const rm_config_context_t *ctx, Remora__V1__ConfigSet **out,
                   rm_config_diags_t *errors, rm_config_diags_t *warnings)
{
    Remora__V1__ConfigSet *set = NULL;
    int rc;

    *out = NULL;
    rc = rm_config_parse(filename, data, len, &set, errors);
    if (rc < 0)
        return rc;
    rc = rm_config_validate(set, ctx, errors, warnings);
    if (rc < 0) {
        protobuf_c_message_free_unpacked(&set->base, NULL);
        return rc;
    }
    *out = set;
    return 0;
}

/* Reads a whole file, refusing (without reading it all) anything over the input limit. */
static int read_all(int fd, char **data, size_t *len)
{
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);

    if (buf == NULL)
        return -ENOMEM;
    for (;;) {
        ssize_t r;
        if (n == cap) {
            char *nb;
            if (cap > RM_CONFIG_MAX_INPUT)
                break; /* already over the limit: parse reports the size */
            nb = realloc(buf, cap * 2);
            if (nb == NULL) {
                free(buf);
                return -ENOMEM;
            }
            buf = nb;
            cap *= 2;
        }
        r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int err = errno;
            free(buf);
            return -err;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    *data = buf;
    *len = n;
    return 0;
}

int rm_config_load_file(const char *path, const rm_config_context_t *ctx,
                        Remora__V1__ConfigSet **out, rm_config_diags_t *errors,
                        rm_config_diags_t *warnings)
{
    const char *name = strcmp(path, "-") == 0 ? "<stdin>" : path;
    char *data = NULL;
    size_t len = 0;
    rm_config_diags_t discard = {0};
    int fd, rc;

    *out = NULL;
    if (errors == NULL)
        errors = &discard;
    fd = strcmp(path, "-") == 0 ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        rm__diag_add(errors, name, 0, 0, NULL, NULL, "cannot open: %s", strerror(-rc));
        rm_config_diags_free(&discard);
        return rc;
    }
    rc = read_all(fd, &data, &len);
    if (fd != STDIN_FILENO)
        close(fd);
    if (rc < 0) {
        rm__diag_add(errors, name, 0, 0, NULL, NULL, "cannot read: %s", strerror(-rc));
        rm_config_diags_free(&discard);
        return rc;
    }
    rc = rm_config_load(name, data, len, ctx, out, errors, warnings);
    free(data);
    rm_config_diags_free(&discard);
    return rc;
}
