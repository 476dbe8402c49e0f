/*
 * config.c -- layer configurations: named integers and floats.
 */
#include "../internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static hlr_config_item *add(hlr_config *c, const char *key)
{
    if (c->n == HLR_CONFIG_MAX)
        return NULL; /* layers have far fewer keys; a programming error, caught by the round-trip tests */
    hlr_config_item *it = &c->item[c->n++];
    memset(it, 0, sizeof *it);
    snprintf(it->key, sizeof it->key, "%s", key);
    return it;
}

void hlr__config_int(hlr_config *c, const char *key, int64_t v)
{
    hlr_config_item *it = add(c, key);
    if (it)
        it->i = v;
}

void hlr__config_float(hlr_config *c, const char *key, double v)
{
    hlr_config_item *it = add(c, key);
    if (it) {
        it->is_float = 1;
        it->f = v;
    }
}

static const hlr_config_item *find(const hlr_config *c, const char *key, int is_float)
{
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->item[i].key, key) == 0 && c->item[i].is_float == is_float)
            return &c->item[i];
    return NULL;
}

int hlr__config_get_int(const hlr_config *c, const char *key, int64_t *v)
{
    const hlr_config_item *it = find(c, key, 0);
    if (!it)
        return -1;
    *v = it->i;
    return 0;
}

int hlr__config_get_float(const hlr_config *c, const char *key, double *v)
{
    const hlr_config_item *it = find(c, key, 1);
    if (!it)
        return -1;
    *v = it->f;
    return 0;
}

int hlr__config_int_in(const hlr_config *c, const char *type, const char *key, int64_t lo, int64_t hi, int *out)
{
    int64_t v;
    if (hlr__config_get_int(c, key, &v) != 0) {
        hlr__fail(HLR_EFORMAT, "%s layer: configuration has no integer \"%s\"", type, key);
        return -1;
    }
    if (v < lo || v > hi) {
        hlr__fail(HLR_EFORMAT, "%s layer: \"%s\" = %lld outside %lld..%lld", type, key, (long long)v, (long long)lo,
                  (long long)hi);
        return -1;
    }
    *out = (int)v;
    return 0;
}

int hlr__config_float_of(const hlr_config *c, const char *type, const char *key, float *out)
{
    double v;
    if (hlr__config_get_float(c, key, &v) != 0) {
        hlr__fail(HLR_EFORMAT, "%s layer: configuration has no number \"%s\"", type, key);
        return -1;
    }
    if (!isfinite(v) || fabs(v) > 3.4e38) {
        hlr__fail(HLR_EFORMAT, "%s layer: \"%s\" = %g is not a finite float", type, key, v);
        return -1;
    }
    *out = (float)v;
    return 0;
}
