/*
 * testutil_internal.h -- checks that look inside the library (tests link
 * the static library, so the internal interface is reachable).
 */
#ifndef HLR_TESTUTIL_INTERNAL_H
#define HLR_TESTUTIL_INTERNAL_H

#include "model.h" /* the model's fields, and through it internal.h */
#include "testutil.h"

/*
 * get_config -> from_config -> get_config gives the same configuration, and
 * the layer's type is in the registry.  Frees l.
 */
static inline void assert_config_round_trips(hlr_layer *l)
{
    const hlr_layer_ops *ops = hlr__layer_ops_find(hlr_layer_type(l));
    ck_assert_msg(ops == l->ops, "%s is not in the registry", hlr_layer_type(l));
    hlr_config a = {0}, b = {0};
    if (ops->get_config)
        ops->get_config(l, &a);
    hlr_layer *copy = ops->from_config(&a);
    ck_assert_msg(copy != NULL, "%s: from_config failed: %s", hlr_layer_type(l), hlr_last_error());
    if (ops->get_config)
        ops->get_config(copy, &b);
    ck_assert_int_eq(a.n, b.n);
    for (int k = 0; k < a.n; k++) {
        ck_assert_str_eq(a.item[k].key, b.item[k].key);
        ck_assert_msg(a.item[k].i == b.item[k].i && a.item[k].f == b.item[k].f, "%s: %s differs", hlr_layer_type(l),
                      a.item[k].key);
    }
    hlr_layer_free(copy);
    hlr_layer_free(l);
}

#endif
