/* test_init_cache.c: the session's cache of initial parameters (core/train/init_cache.h): a
 * layout seen once keeps no values, the second model of a layout leaves its values and mask,
 * later ones get exactly those bytes, and a layout that differs in any key field (a stream
 * seed, a count, the total size, the trainable flag) is never served another's values. */
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "train/init_cache.h"

enum { N = 10 };

/* Two tensors, 6 + 4 floats; the second frozen. */
static void layout(init_decl d[2])
{
    memset(d, 0, 2 * sizeof *d);
    d[0] = (init_decl){.offset = 0, .count = 6, .stream = 0x1234, .init = 2, .trainable = 1,
                       .scale = 0.02f};
    d[1] = (init_decl){.offset = 6, .count = 4, .stream = 0x9876, .init = 1, .trainable = 0,
                       .scale = 1.0f};
}

int main(void)
{
    float param[N], got[N];
    uint8_t mask[N];
    for (int i = 0; i < N; i++) {
        param[i] = 0.25f * (float)i - 1.0f;
        mask[i] = i < 6;
    }
    init_decl d[2];
    layout(d);
    init_cache *c = NULL;
    int64_t nt = -1;
    CHECK(init_cache_copy(c, d, 2, N, got, &nt) == NULL);   /* nothing yet */
    init_cache_offer(&c, d, 2, N, param, mask, 6);
    CHECK(c != NULL);
    CHECK(init_cache_copy(c, d, 2, N, got, &nt) == NULL);   /* the first model: key only */
    init_cache_offer(&c, d, 2, N, param, mask, 6);
    memset(got, 0, sizeof got);
    const uint8_t *shared = init_cache_copy(c, d, 2, N, got, &nt);
    CHECK(shared != NULL);
    CHECK(memcmp(got, param, sizeof param) == 0);           /* the same bytes */
    CHECK(shared && memcmp(shared, mask, sizeof mask) == 0);
    CHECK(shared != mask);                                  /* the cache's own copy */
    CHECK(nt == 6);
    param[0] = 99.0f; /* the model that offered its values goes on training */
    CHECK(init_cache_copy(c, d, 2, N, got, &nt) && got[0] != 99.0f);

    /* any other layout misses */
    init_decl e[2];
    layout(e);
    e[1].stream ^= 1;
    CHECK(init_cache_copy(c, e, 2, N, got, &nt) == NULL);
    layout(e);
    e[0].trainable = 0;
    CHECK(init_cache_copy(c, e, 2, N, got, &nt) == NULL);
    layout(e);
    e[0].scale = 0.01f;
    CHECK(init_cache_copy(c, e, 2, N, got, &nt) == NULL);
    CHECK(init_cache_copy(c, d, 1, 6, got, &nt) == NULL);  /* a prefix of the layout */
    CHECK(init_cache_copy(c, d, 2, N + 1, got, &nt) == NULL);

    /* a second layout lives beside the first */
    layout(e);
    e[0].stream = 0x4321;
    float other[N] = {0};
    init_cache_offer(&c, e, 2, N, other, mask, 6);
    init_cache_offer(&c, e, 2, N, other, mask, 6);
    CHECK(init_cache_copy(c, e, 2, N, got, &nt) && got[3] == 0.0f);
    CHECK(init_cache_copy(c, d, 2, N, got, &nt) && got[3] == param[3]);
    init_cache_free(c);
    return check_exit();
}
