/* suggest.c: "did you mean 'depth'?" for misspelt keys and enum values, by optimal string
 * alignment distance (Levenshtein plus swapping two neighbours), ignoring case. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

#define SUGGEST_MAX_LEN 64 /* longer words are not typos of a key */

static size_t osa_distance(const char *a, size_t la, const char *b, size_t lb)
{
    size_t rows[3][SUGGEST_MAX_LEN + 1];
    size_t *prev2 = rows[0], *prev = rows[1], *cur = rows[2];
    for (size_t j = 0; j <= lb; j++) {
        prev[j] = j;
    }
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            int ca = tolower((unsigned char)a[i - 1]), cb = tolower((unsigned char)b[j - 1]);
            size_t cost = ca != cb;
            size_t best = prev[j] + 1;
            if (cur[j - 1] + 1 < best) {
                best = cur[j - 1] + 1;
            }
            if (prev[j - 1] + cost < best) {
                best = prev[j - 1] + cost;
            }
            if (i > 1 && j > 1 && ca == tolower((unsigned char)b[j - 2]) &&
                tolower((unsigned char)a[i - 2]) == cb && prev2[j - 2] + 1 < best) {
                best = prev2[j - 2] + 1;
            }
            cur[j] = best;
        }
        size_t *t = prev2;
        prev2 = prev;
        prev = cur;
        cur = t;
    }
    return prev[lb];
}

const char *cfg_did_you_mean(const char *word, const char *const *candidates, size_t n)
{
    if (!word || !candidates) {
        return NULL;
    }
    size_t lw = strlen(word);
    if (lw == 0 || lw > SUGGEST_MAX_LEN) {
        return NULL;
    }
    /* One edit for short words, about a third of the letters for longer ones: enough for
     * typos and swaps, not so much that unrelated names are offered. */
    size_t limit = lw <= 4 ? 1 : lw / 3 + (lw % 3 != 0);
    const char *best = NULL;
    size_t best_d = limit + 1;
    for (size_t i = 0; i < n; i++) {
        const char *c = candidates[i];
        size_t lc = c ? strlen(c) : 0;
        if (!lc || lc > SUGGEST_MAX_LEN) {
            continue;
        }
        size_t d = osa_distance(word, lw, c, lc);
        if (d < best_d) {
            best_d = d;
            best = c;
        }
    }
    return best;
}
