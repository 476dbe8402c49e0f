/*
 * registry.c -- every layer type the library knows, by name.  A new layer
 * adds one line here.
 */
#include "../internal.h"

#include <string.h>

extern const hlr_layer_ops hlr__dense_ops, hlr__relu_ops, hlr__leaky_relu_ops, hlr__sigmoid_ops, hlr__tanh_ops,
    hlr__gelu_ops, hlr__softmax_ops, hlr__dropout_ops, hlr__flatten_ops;

static const hlr_layer_ops *const registry[] = {
    &hlr__dense_ops,   &hlr__relu_ops,    &hlr__leaky_relu_ops, &hlr__sigmoid_ops, &hlr__tanh_ops,
    &hlr__gelu_ops,    &hlr__softmax_ops, &hlr__dropout_ops,    &hlr__flatten_ops,
};

const hlr_layer_ops *hlr__layer_ops_find(const char *type)
{
    for (size_t i = 0; i < sizeof registry / sizeof registry[0]; i++)
        if (strcmp(registry[i]->type, type) == 0)
            return registry[i];
    return NULL;
}
