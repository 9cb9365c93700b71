/* tok_common.h: small helpers shared by the tokenizer plugins (included, not linked: each
 * plugin stays one self-contained shared object that sees only the public header). */
#ifndef MPSL_TOK_COMMON_H
#define MPSL_TOK_COMMON_H

#include <stddef.h>

#include <mpsl/plugin.h>

/* 1 when the host's kernel table has entry f: the table is long enough (it only grows at the
 * end) and the entry is filled. Plugins check the kernels they call in create(), so an older
 * or partial host is refused with a message instead of a NULL call in forward(). */
#define TOK_HAS_KERNEL(k, f) \
    ((k) != NULL && (k)->size >= offsetof(mpsl_kernels, f) + sizeof((k)->f) && (k)->f != NULL)

/* Refuse a missing kernel, naming the plugin, the kernel and the config place. */
#define TOK_REQUIRE_KERNEL(h, where, plugin, f, err)                                        \
    do {                                                                                    \
        if (!TOK_HAS_KERNEL((h)->kernels, f)) {                                             \
            (h)->error_set(err, "%s: %s needs the kernel '" #f "', which this mpsl does "   \
                           "not provide; rebuild mpsl and its plugins from the same "       \
                           "source", where, plugin);                                        \
            return MPSL_ERR_PLUGIN;                                                         \
        }                                                                                   \
    } while (0)

/* 1 when any float of the tensor at [off, off+n) is trained (w->trainable NULL: all are).
 * Backward skips the weight gradients of a fully frozen tensor, as plugin.h asks. The scan
 * stops at the first trained float, so it is only long for a frozen tensor. */
static inline int tok_trained(const mpsl_weights *w, int64_t off, int64_t n)
{
    if (!w->trainable) {
        return 1;
    }
    for (int64_t i = 0; i < n; i++) {
        if (w->trainable[off + i]) {
            return 1;
        }
    }
    return 0;
}

#endif
