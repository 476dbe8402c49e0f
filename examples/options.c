/*
 * options.c -- see options.h.
 */
#include "options.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const opt_spec *find(const opt_spec *specs, int nspecs, const char *name)
{
    for (int k = 0; k < nspecs; k++)
        if (!strcmp(specs[k].name, name))
            return &specs[k];
    return NULL;
}

/* "a whole number from 1 to 100", "a number > 0", ... */
static void describe_range(const opt_spec *s, char *buf, size_t cap)
{
    int whole = s->type == OPT_INT || s->type == OPT_LONG || s->type == OPT_U64;
    const char *kind = whole ? "a whole number" : "a number";
    if (isinf(s->hi) || s->hi >= 1e300)
        snprintf(buf, cap, "%s %s %.15g", kind, s->lo_open ? ">" : ">=", s->lo);
    else if (s->lo_open)
        snprintf(buf, cap, "%s > %.15g and <= %.15g", kind, s->lo, s->hi);
    else
        snprintf(buf, cap, "%s from %.15g to %.15g", kind, s->lo, s->hi);
}

static int set_value(const char *prog, const opt_spec *s, const char *v)
{
    if (s->type == OPT_STRING || s->type == OPT_APPEND) {
        if (!*v) {
            fprintf(stderr, "%s: %s needs a value, not an empty string\n", prog, s->name);
            return -1;
        }
        if (s->type == OPT_STRING) {
            *(const char **)s->dest = v;
            return 0;
        }
        if (*s->rest_count >= (int)s->hi) {
            fprintf(stderr, "%s: %s is given more than %d times\n", prog, s->name, (int)s->hi);
            return -1;
        }
        ((const char **)s->dest)[(*s->rest_count)++] = v;
        return 0;
    }
    char *end = NULL;
    errno = 0;
    double x;
    int whole = s->type == OPT_INT || s->type == OPT_LONG || s->type == OPT_U64;
    if (s->type == OPT_U64 && v[0] != '-') {
        unsigned long long n = strtoull(v, &end, 10);
        x = (double)n;
        if (end == v || *end || errno == ERANGE) {
            fprintf(stderr, "%s: %s '%s' is not a whole number from 0 to %llu\n", prog, s->name, v, ~0ULL);
            return -1;
        }
    } else if (whole) {
        long long n = strtoll(v, &end, 10);
        x = (double)n;
        if (end == v || *end || errno == ERANGE) {
            fprintf(stderr, "%s: %s '%s' is not a whole number\n", prog, s->name, v);
            return -1;
        }
    } else {
        x = strtod(v, &end);
        if (end == v || *end || !isfinite(x)) {
            fprintf(stderr, "%s: %s '%s' is not a finite number\n", prog, s->name, v);
            return -1;
        }
    }
    if (x < s->lo || x > s->hi || (s->lo_open && x == s->lo)) {
        char range[128];
        describe_range(s, range, sizeof range);
        fprintf(stderr, "%s: %s %s is out of range: expected %s%s%s%s\n", prog, s->name, v, range,
                s->hint ? " (" : "", s->hint ? s->hint : "", s->hint ? ")" : "");
        return -1;
    }
    switch (s->type) {
    case OPT_INT:
        *(int *)s->dest = (int)x;
        break;
    case OPT_LONG:
        *(long *)s->dest = (long)x;
        break;
    case OPT_U64:
        *(unsigned long long *)s->dest = strtoull(v, NULL, 10);
        break;
    case OPT_FLOAT:
        *(float *)s->dest = (float)x;
        break;
    default:
        *(double *)s->dest = x;
        break;
    }
    return 0;
}

int parse_options(const char *prog, int argc, char **argv, int first, const opt_spec *specs, int nspecs,
                  const char **pos, int max_pos, int *npos)
{
    int n = 0;
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h"))
            return 1;
        if (a[0] != '-' || !a[1]) { /* positional ("-" alone too: it names standard input) */
            if (n >= max_pos) {
                fprintf(stderr, "%s: unexpected argument '%s' (see %s --help)\n", prog, a, prog);
                return -1;
            }
            pos[n++] = a;
            continue;
        }
        const opt_spec *s = find(specs, nspecs, a);
        if (!s) {
            fprintf(stderr, "%s: unknown option '%s' (see %s --help)\n", prog, a, prog);
            return -1;
        }
        if (s->seen)
            *s->seen = 1;
        if (s->type == OPT_FLAG) {
            *(int *)s->dest = 1;
            continue;
        }
        if (s->type == OPT_REST) {
            *(char ***)s->dest = argv + i + 1;
            *s->rest_count = argc - i - 1;
            break;
        }
        /* A number may be negative ("--lr -1" is a value, then refused by its
         * range); any other value must not look like an option. */
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v || (v[0] == '-' && v[1] == '-')) {
            fprintf(stderr, "%s: %s needs a value\n", prog, a);
            return -1;
        }
        if (set_value(prog, s, v) != 0)
            return -1;
        i++;
    }
    if (npos)
        *npos = n;
    return 0;
}
