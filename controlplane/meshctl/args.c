/* controlplane/meshctl/args.c — the option parser every command shares: long and short flags,
 * the global --server and -h/--help anywhere on the line, and "did you mean" for unknown flags.
 * getopt_long is not used because its messages cannot suggest the nearest flag.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/duration.h"
#include "controlplane/meshctl/meshctl.h"

/* Every flag name a command knows (its spec plus the global ones), as "--name". */
static const char **flag_names(const rm__opt_spec_t *spec)
{
    size_t n = 0;
    while (spec[n].name != NULL)
        n++;
    const char **names = rm__xcalloc(n + 4, sizeof(*names));
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        names[k++] = rm__xasprintf("--%s", spec[i].name);
    names[k++] = rm__xstrdup("--server");
    names[k++] = rm__xstrdup("--help");
    names[k] = NULL;
    return names;
}

static void unknown_flag(const rm__cmd_t *cmd, const rm__opt_spec_t *spec, const char *arg)
{
    const char **names = flag_names(spec);
    char word[128];
    snprintf(word, sizeof(word), "%.*s", (int)strcspn(arg, "="), arg);
    const char *s = rm__cli_suggest(word, (const char *const *)names);
    fprintf(stderr, "meshctl %s: unknown flag \"%s\"", cmd->name, word);
    if (s != NULL)
        fprintf(stderr, "; did you mean \"%s\"?", s);
    fprintf(stderr, "\n  see 'meshctl %s -h'\n", cmd->name);
    for (size_t i = 0; names[i] != NULL; i++)
        free((void *)names[i]);
    free(names);
}

int rm__args_parse(rm__cli_t *cli, const rm__cmd_t *cmd, const rm__opt_spec_t *spec, int argc,
                   char **argv, int maxpos, rm__args_t *out)
{
    memset(out, 0, sizeof(*out));
    int only_pos = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (only_pos || a[0] != '-' || a[1] == '\0') { /* "-" alone is a value (stdin) */
            if (out->npos >= maxpos || out->npos >= RM__MAX_POS) {
                fprintf(stderr, "meshctl %s: unexpected argument \"%s\"\n  see 'meshctl %s -h'\n",
                        cmd->name, a, cmd->name);
                return RM__EXIT_REJECTED;
            }
            out->pos[out->npos++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_pos = 1;
            continue;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(cmd->help, stdout);
            return RM__ARGS_HELP;
        }
        int idx = -1, is_server = 0;
        const char *inline_val = NULL;
        if (a[1] == '-') {
            const char *name = a + 2;
            size_t len = strcspn(name, "=");
            if (name[len] == '=')
                inline_val = name + len + 1;
            if (len == 6 && strncmp(name, "server", 6) == 0)
                is_server = 1;
            for (int k = 0; !is_server && spec[k].name != NULL; k++)
                if (strlen(spec[k].name) == len && strncmp(spec[k].name, name, len) == 0)
                    idx = k;
        } else {
            for (int k = 0; spec[k].name != NULL; k++)
                if (spec[k].short_name == a[1])
                    idx = k;
            if (idx >= 0 && a[2] != '\0') {
                if (!spec[idx].has_arg)
                    idx = -1; /* no bundling of short flags: "-wx" is not two flags */
                else
                    inline_val = a + 2;
            }
        }
        if (idx < 0 && !is_server) {
            unknown_flag(cmd, spec, a);
            return RM__EXIT_REJECTED;
        }
        int has_arg = is_server || spec[idx].has_arg;
        const char *val = "1";
        if (has_arg) {
            if (inline_val != NULL) {
                val = inline_val;
            } else if (i + 1 < argc) {
                val = argv[++i];
            } else {
                fprintf(stderr, "meshctl %s: flag %s needs a value\n  see 'meshctl %s -h'\n",
                        cmd->name, a, cmd->name);
                return RM__EXIT_REJECTED;
            }
        } else if (inline_val != NULL) {
            fprintf(stderr, "meshctl %s: flag --%s takes no value\n", cmd->name, spec[idx].name);
            return RM__EXIT_REJECTED;
        }
        if (is_server)
            cli->server = val;
        else
            out->value[idx] = val;
    }
    return 0;
}

int rm__output_parse(const char *value, const char *const *allowed)
{
    if (value == NULL)
        return 0;
    for (int i = 0; allowed[i] != NULL; i++)
        if (strcmp(value, allowed[i]) == 0)
            return i;
    rm__unknown("output format", value, allowed);
    return -1;
}

int rm__duration_arg(const char *flag, const char *value, uint64_t *ms)
{
    int rc = rm_duration_parse(value, ms);
    if (rc < 0) {
        fprintf(stderr, "meshctl: %s \"%s\": %s (e.g. 500ms, 30s, 2m)\n", flag, value,
                rm_duration_strerror(rc));
        return -1;
    }
    return 0;
}
