/*
 * metadata.c -- what a model carries besides its layers and what model files
 * keep of it: the data set name, class names, free key/value strings and the
 * per-epoch history hlr_model_fit() records; and the training counters.
 */
#include "model.h"
#include "modelfile.h"

#include <string.h>

static char *dup_string(const char *s, size_t n)
{
    char *d = hlr__alloc_or_fail(n + 1, 1, "metadata string");
    if (d)
        memcpy(d, s, n);
    return d;
}

static void free_strings(char **v, int n)
{
    if (v)
        for (int i = 0; i < n; i++)
            hlr__free(v[i]);
    hlr__free(v);
}

void hlr__metadata_clear(hlr_metadata *md)
{
    hlr__free(md->dataset);
    free_strings(md->classes, md->nclasses);
    free_strings(md->keys, md->nkeys);
    free_strings(md->values, md->nkeys);
    hlr__free(md->history);
    memset(md, 0, sizeof *md);
}

hlr_status hlr__metadata_reserve_history(hlr_metadata *md, int n)
{
    int64_t want = (int64_t)md->nhistory + (n > 0 ? n : 0);
    if (want > HLR_FILE_MAX_HISTORY)
        want = HLR_FILE_MAX_HISTORY;
    if (want < md->history_cap)
        want = md->history_cap;
    /* Always one call, so that a fit's allocations do not depend on the history's size. */
    hlr_epoch_stats *h = hlr__realloc(md->history, (size_t)(want ? want : 1) * sizeof *h);
    if (!h)
        return hlr__fail(HLR_ENOMEM, "history: cannot make room for %d epochs", n);
    md->history = h;
    md->history_cap = (int)want;
    return HLR_OK;
}

hlr_status hlr__metadata_add_epoch(hlr_metadata *md, const hlr_epoch_stats *s)
{
    if (md->nhistory >= HLR_FILE_MAX_HISTORY)
        return HLR_OK; /* keep the first 2^24 epochs; no training runs that long */
    if (md->nhistory == md->history_cap) {
        int cap = md->history_cap ? 2 * md->history_cap : 16;
        hlr_epoch_stats *h = hlr__realloc(md->history, (size_t)cap * sizeof *h);
        if (!h)
            return hlr__fail(HLR_ENOMEM, "history: cannot record epoch %d", s->epoch);
        md->history = h;
        md->history_cap = cap;
    }
    md->history[md->nhistory++] = *s;
    return HLR_OK;
}

hlr_metadata *hlr_model_metadata(hlr_model *m)
{
    if (!m) {
        hlr__fail(HLR_EINVAL, "hlr_model_metadata: model is NULL");
        return NULL;
    }
    return &m->meta;
}

int64_t hlr_model_epochs_trained(const hlr_model *m) { return m ? m->epochs_trained : 0; }

/* ---- data set and class names ---- */

hlr_status hlr_metadata_set_dataset(hlr_metadata *md, const char *name)
{
    if (!md)
        return hlr__fail(HLR_EINVAL, "hlr_metadata_set_dataset: metadata is NULL");
    size_t n = name ? strlen(name) : 0;
    if (n > HLR_FILE_MAX_DATASET)
        return hlr__fail(HLR_EINVAL, "hlr_metadata_set_dataset: the name has %zu bytes; at most %d", n,
                         HLR_FILE_MAX_DATASET);
    char *d = NULL;
    if (n && !(d = dup_string(name, n)))
        return HLR_ENOMEM;
    hlr__free(md->dataset);
    md->dataset = d;
    return HLR_OK;
}

const char *hlr_metadata_dataset(const hlr_metadata *md) { return md && md->dataset ? md->dataset : ""; }

hlr_status hlr_metadata_set_class_names(hlr_metadata *md, int n, const char *const *names)
{
    const char *fn = "hlr_metadata_set_class_names";
    if (!md || (n > 0 && !names))
        return hlr__fail(HLR_EINVAL, "%s: %s is NULL", fn, md ? "names" : "metadata");
    if (n < 0 || n > HLR_FILE_MAX_CLASSES)
        return hlr__fail(HLR_EINVAL, "%s: %d names; expected 0 to %d", fn, n, HLR_FILE_MAX_CLASSES);
    for (int i = 0; i < n; i++) {
        size_t len = names[i] ? strlen(names[i]) : 0;
        if (len < 1 || len > HLR_FILE_MAX_NAME)
            return hlr__fail(HLR_EINVAL, "%s: name %d is %s; expected 1 to %d bytes", fn, i,
                             names[i] ? "empty or too long" : "NULL", HLR_FILE_MAX_NAME);
    }
    char **v = n ? hlr__alloc_or_fail((size_t)n, sizeof *v, fn) : NULL;
    if (n && !v)
        return HLR_ENOMEM;
    for (int i = 0; i < n; i++)
        if (!(v[i] = dup_string(names[i], strlen(names[i])))) {
            free_strings(v, i);
            return HLR_ENOMEM;
        }
    free_strings(md->classes, md->nclasses);
    md->classes = v;
    md->nclasses = n;
    return HLR_OK;
}

int hlr_metadata_num_classes(const hlr_metadata *md) { return md ? md->nclasses : 0; }

const char *hlr_metadata_class_name(const hlr_metadata *md, int i)
{
    if (!md || i < 0 || i >= md->nclasses) {
        hlr__fail(HLR_EINVAL, "hlr_metadata_class_name: %s", md ? "index out of range" : "metadata is NULL");
        return NULL;
    }
    return md->classes[i];
}

/* ---- key/value strings ---- */

static int find_key(const hlr_metadata *md, const char *key)
{
    for (int i = 0; i < md->nkeys; i++)
        if (strcmp(md->keys[i], key) == 0)
            return i;
    return -1;
}

hlr_status hlr_metadata_set(hlr_metadata *md, const char *key, const char *value)
{
    const char *fn = "hlr_metadata_set";
    if (!md || !key)
        return hlr__fail(HLR_EINVAL, "%s: %s is NULL", fn, md ? "key" : "metadata");
    size_t klen = strlen(key), vlen = value ? strlen(value) : 0;
    if (klen < 1 || klen > HLR_FILE_MAX_NAME)
        return hlr__fail(HLR_EINVAL, "%s: key of %zu bytes; expected 1 to %d", fn, klen, HLR_FILE_MAX_NAME);
    if (vlen > HLR_FILE_MAX_VALUE)
        return hlr__fail(HLR_EINVAL, "%s: value of \"%s\" has %zu bytes; at most %d", fn, key, vlen,
                         HLR_FILE_MAX_VALUE);
    int at = find_key(md, key);
    if (!value) { /* remove, keeping the order of the rest */
        if (at >= 0) {
            hlr__free(md->keys[at]);
            hlr__free(md->values[at]);
            memmove(md->keys + at, md->keys + at + 1, (size_t)(md->nkeys - at - 1) * sizeof *md->keys);
            memmove(md->values + at, md->values + at + 1, (size_t)(md->nkeys - at - 1) * sizeof *md->values);
            md->nkeys--;
        }
        return HLR_OK;
    }
    char *v = dup_string(value, vlen);
    if (!v)
        return HLR_ENOMEM;
    if (at >= 0) {
        hlr__free(md->values[at]);
        md->values[at] = v;
        return HLR_OK;
    }
    if (md->nkeys >= HLR_FILE_MAX_KEYS) {
        hlr__free(v);
        return hlr__fail(HLR_EINVAL, "%s: already %d keys, the most a model keeps", fn, HLR_FILE_MAX_KEYS);
    }
    if (md->nkeys == md->keys_cap) {
        int cap = md->keys_cap ? 2 * md->keys_cap : 8;
        char **k = hlr__realloc(md->keys, (size_t)cap * sizeof *k);
        if (k)
            md->keys = k;
        char **vs = k ? hlr__realloc(md->values, (size_t)cap * sizeof *vs) : NULL;
        if (vs)
            md->values = vs;
        if (!k || !vs) {
            hlr__free(v);
            return hlr__fail(HLR_ENOMEM, "%s: cannot grow the key list", fn);
        }
        md->keys_cap = cap;
    }
    char *k = dup_string(key, klen);
    if (!k) {
        hlr__free(v);
        return HLR_ENOMEM;
    }
    md->keys[md->nkeys] = k;
    md->values[md->nkeys] = v;
    md->nkeys++;
    return HLR_OK;
}

const char *hlr_metadata_get(const hlr_metadata *md, const char *key)
{
    if (!md || !key)
        return NULL;
    int at = find_key(md, key);
    return at >= 0 ? md->values[at] : NULL;
}

int hlr_metadata_count(const hlr_metadata *md) { return md ? md->nkeys : 0; }

const char *hlr_metadata_key(const hlr_metadata *md, int i)
{
    if (!md || i < 0 || i >= md->nkeys) {
        hlr__fail(HLR_EINVAL, "hlr_metadata_key: %s", md ? "index out of range" : "metadata is NULL");
        return NULL;
    }
    return md->keys[i];
}

/* ---- history ---- */

int hlr_metadata_history_length(const hlr_metadata *md) { return md ? md->nhistory : 0; }

hlr_status hlr_metadata_history(const hlr_metadata *md, int i, hlr_epoch_stats *out)
{
    if (!md || !out)
        return hlr__fail(HLR_EINVAL, "hlr_metadata_history: NULL argument");
    if (i < 0 || i >= md->nhistory)
        return hlr__fail(HLR_EINVAL, "hlr_metadata_history: index %d outside 0..%d", i, md->nhistory - 1);
    *out = md->history[i];
    return HLR_OK;
}

hlr_status hlr_metadata_clear_history(hlr_metadata *md)
{
    if (!md)
        return hlr__fail(HLR_EINVAL, "hlr_metadata_clear_history: metadata is NULL");
    md->nhistory = 0;
    return HLR_OK;
}
