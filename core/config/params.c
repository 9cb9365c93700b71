/* params.c: cfg_parse_params(): check a plugin's (or a section's) YAML mapping against its
 * table of mpsl_param_spec and fill the parameter struct. Every refusal names the
 * file:line:column of the offending value, what was expected and what was found. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cfg_internal.h"
#include "util/util.h"

/* A value to convert: a node from the file, or (node == NULL) a spec's default text. */
typedef struct pvalue {
    const cfg_node *node;
    const char *text;
    int quoted;
} pvalue;

static int is_null(const pvalue *v)
{
    return (!v->node || v->node->type == CFG_SCALAR) && !v->quoted && cfg_text_is_null(v->text);
}

/* What was found, for messages: `"abc"`, `null`, `a mapping`, `the quoted string "5"`. */
static void describe(const pvalue *v, char *buf, size_t size)
{
    if (v->node && v->node->type != CFG_SCALAR) {
        snprintf(buf, size, "%s", v->node->type == CFG_MAP ? "a mapping" : "a sequence");
    } else if (is_null(v)) {
        snprintf(buf, size, "null");
    } else {
        int long_text = strlen(v->text) > 60;
        snprintf(buf, size, "%s\"%.60s%s\"", v->quoted ? "the quoted string " : "", v->text,
                 long_text ? "..." : "");
    }
}

static void fmt_num(double x, char *buf, size_t size)
{
    if (x == floor(x) && fabs(x) < 1e15) {
        snprintf(buf, size, "%.0f", x);
    } else {
        snprintf(buf, size, "%g", x);
    }
}

/* min == max == 0 means "no bounds" (the natural way to leave them out in the macros). */
static int bounded(const mpsl_param_spec *s) { return !(s->min == 0 && s->max == 0); }

static void expected(const mpsl_param_spec *s, char *buf, size_t size)
{
    char lo[32], hi[32];
    fmt_num(s->min, lo, sizeof lo);
    fmt_num(s->max, hi, sizeof hi);
    switch (s->type) {
    case MPSL_PARAM_T_INT:
        if (bounded(s)) {
            snprintf(buf, size, "an integer in [%s, %s]", lo, hi);
        } else {
            snprintf(buf, size, "an integer");
        }
        break;
    case MPSL_PARAM_T_FLOAT:
        if (bounded(s)) {
            snprintf(buf, size, "a number in [%s, %s]", lo, hi);
        } else {
            snprintf(buf, size, "a number");
        }
        break;
    case MPSL_PARAM_T_BOOL:
        snprintf(buf, size, "true or false");
        break;
    case MPSL_PARAM_T_STRING:
        snprintf(buf, size, "a string");
        break;
    default: {
        /* "one of cls, mean" */
        size_t used = (size_t)snprintf(buf, size, "one of ");
        for (const char *c = s->choices; *c && used + 3 < size; c++) {
            used += (size_t)snprintf(buf + used, size - used, *c == '|' ? ", " : "%c", *c);
        }
        break;
    }
    }
}

/* YAML 1.2 core schema numbers: [-+]? ( .digits | digits [. digits?] ) ([eE] [-+]? digits)? */
static int looks_like_float(const char *t)
{
    const char *p = t + (*t == '-' || *t == '+');
    size_t before = strspn(p, "0123456789");
    p += before;
    size_t after = 0;
    if (*p == '.') {
        after = strspn(p + 1, "0123456789");
        p += 1 + after;
    }
    if (!before && !after) {
        return 0;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        p += *p == '-' || *p == '+';
        size_t exp = strspn(p, "0123456789");
        if (!exp) {
            return 0;
        }
        p += exp;
    }
    return *p == '\0';
}

/* .inf, -.Inf, nan, Infinity and friends, in any case. */
static int looks_non_finite(const char *t)
{
    const char *p = t + (*t == '-' || *t == '+');
    p += *p == '.';
    return !strcasecmp(p, "inf") || !strcasecmp(p, "nan") || !strcasecmp(p, "infinity");
}

static int enum_index(const char *choices, const char *text)
{
    size_t len = strlen(text);
    int idx = 0;
    for (const char *c = choices;; idx++) {
        const char *bar = strchr(c, '|');
        size_t n = bar ? (size_t)(bar - c) : strlen(c);
        if (n == len && !strncmp(c, text, n)) {
            return idx;
        }
        if (!bar) {
            return -1;
        }
        c = bar + 1;
    }
}

/* "did you mean" over the '|'-separated choices. */
static void enum_suggest(const char *choices, const char *text, char *buf, size_t size)
{
    char copy[512];
    const char *cands[32];
    size_t n = 0;
    snprintf(copy, sizeof copy, "%s", choices);
    for (char *tok = copy, *bar; tok && n < MPSL_COUNT(cands); tok = bar ? bar + 1 : NULL) {
        bar = strchr(tok, '|');
        if (bar) {
            *bar = '\0';
        }
        cands[n++] = tok;
    }
    const char *best = cfg_did_you_mean(text, cands, n);
    buf[0] = '\0';
    if (best) {
        snprintf(buf, size, "; did you mean '%s'?", best);
    }
}

/* Convert v by s->type into dst. On failure writes "expected X for 'key', got Y..." to why. */
static int convert(const mpsl_param_spec *s, const pvalue *v, unsigned char *dst, char *why,
                   size_t size)
{
    char exp[256], got[128], extra[160] = "";
    expected(s, exp, sizeof exp);
    describe(v, got, sizeof got);
    int scalar = !v->node || v->node->type == CFG_SCALAR;
    if (s->type == MPSL_PARAM_T_STRING && scalar) {
        const char *p = is_null(v) ? NULL : v->text;
        if (!p && s->required) {
            goto bad;
        }
        memcpy(dst, &p, sizeof p);
        return MPSL_OK;
    }
    if (!scalar || is_null(v)) {
        goto bad;
    }
    if (s->type == MPSL_PARAM_T_ENUM) {
        int idx = enum_index(s->choices, v->text);
        if (idx < 0) {
            enum_suggest(s->choices, v->text, extra, sizeof extra);
            goto bad;
        }
        memcpy(dst, &idx, sizeof idx);
        return MPSL_OK;
    }
    if (v->quoted) {
        /* A quoted "5" or "true" is a string on purpose; say how to fix it. */
        snprintf(extra, sizeof extra, "; remove the quotes");
        goto bad;
    }
    if (s->type == MPSL_PARAM_T_BOOL) {
        static const char *const yes[] = {"true", "True", "TRUE"};
        static const char *const no[] = {"false", "False", "FALSE"};
        int b = -1;
        for (size_t i = 0; i < 3; i++) {
            b = !strcmp(v->text, yes[i]) ? 1 : !strcmp(v->text, no[i]) ? 0 : b;
        }
        if (b < 0) {
            if (!strcasecmp(v->text, "yes") || !strcasecmp(v->text, "no") ||
                !strcasecmp(v->text, "on") || !strcasecmp(v->text, "off")) {
                snprintf(extra, sizeof extra, " (YAML 1.2 booleans are only true and false)");
            }
            goto bad;
        }
        memcpy(dst, &b, sizeof b);
        return MPSL_OK;
    }
    if (looks_non_finite(v->text)) {
        snprintf(extra, sizeof extra, " (not a finite number)");
        goto bad;
    }
    if (s->type == MPSL_PARAM_T_INT) {
        const char *t = v->text;
        const char *digits = t + (*t == '-' || *t == '+');
        if (!*digits || strspn(digits, "0123456789") != strlen(digits)) {
            if (looks_like_float(t)) {
                snprintf(extra, sizeof extra, " (not a whole number)");
            }
            goto bad;
        }
        errno = 0;
        long long x = strtoll(t, NULL, 10);
        if (errno == ERANGE) {
            snprintf(extra, sizeof extra, " (too large for a 64-bit integer)");
            goto bad;
        }
        if (bounded(s) && ((double)x < s->min || (double)x > s->max)) {
            goto bad;
        }
        int64_t x64 = x;
        memcpy(dst, &x64, sizeof x64);
        return MPSL_OK;
    }
    /* MPSL_PARAM_T_FLOAT */
    if (!looks_like_float(v->text)) {
        goto bad;
    }
    double x = strtod(v->text, NULL);
    if (!isfinite(x)) {
        snprintf(extra, sizeof extra, " (not a finite number)");
        goto bad;
    }
    if (bounded(s) && !(x >= s->min && x <= s->max)) {
        goto bad;
    }
    memcpy(dst, &x, sizeof x);
    return MPSL_OK;
bad:
    snprintf(why, size, "expected %s for '%s', got %s%s", exp, s->key, got, extra);
    return MPSL_ERR_INVALID;
}

static size_t type_size(mpsl_param_type t)
{
    switch (t) {
    case MPSL_PARAM_T_INT:
        return sizeof(int64_t);
    case MPSL_PARAM_T_FLOAT:
        return sizeof(double);
    case MPSL_PARAM_T_STRING:
        return sizeof(const char *);
    case MPSL_PARAM_T_BOOL:
    case MPSL_PARAM_T_ENUM:
        return sizeof(int);
    default:
        return 0;
    }
}

/* Mistakes in a spec table are bugs in the plugin, reported as MPSL_ERR_INTERNAL. */
static int check_spec(const mpsl_param_spec *s, size_t params_size, mpsl_error *err)
{
    size_t sz = type_size(s->type);
    if (!s->key || !sz) {
        return mpsl_errs(err, MPSL_ERR_INTERNAL, "parameter spec '%s' has an invalid type %d",
                         s->key ? s->key : "(null)", (int)s->type);
    }
    if (s->offset > params_size || params_size - s->offset < sz) {
        return mpsl_errs(err, MPSL_ERR_INTERNAL,
                         "parameter spec '%s': offset %zu does not fit params_size %zu",
                         s->key, s->offset, params_size);
    }
    if (s->type == MPSL_PARAM_T_ENUM && (!s->choices || !s->choices[0])) {
        return mpsl_errs(err, MPSL_ERR_INTERNAL, "parameter spec '%s': enum without choices",
                         s->key);
    }
    return MPSL_OK;
}

static const char *in_context(const char *context, char *buf, size_t size)
{
    if (context && context[0]) {
        snprintf(buf, size, " in %s", context);
    } else {
        buf[0] = '\0';
    }
    return buf;
}

/* The keys a section accepts are its specs' plus the ones handled elsewhere (`ignore`, e.g.
 * sub-sections or `plugin`), so both appear in suggestions and in the list. */
static int unknown_key(const cfg_node *map, size_t i, const mpsl_param_spec *specs,
                       size_t n_specs, const char *const *ignore, const char *context,
                       mpsl_error *err)
{
    const char *cands[64];
    size_t nc = 0;
    for (size_t k = 0; k < n_specs && nc < MPSL_COUNT(cands); k++) {
        cands[nc++] = specs[k].key;
    }
    for (size_t k = 0; ignore && ignore[k] && nc < MPSL_COUNT(cands); k++) {
        cands[nc++] = ignore[k];
    }
    const cfg_node *key = map->items[i].key;
    const char *best = cfg_did_you_mean(key->text, cands, nc);
    char where[512], ctx[256], hint[512] = "";
    size_t used = 0;
    if (best) {
        used = (size_t)snprintf(hint, sizeof hint, "; did you mean '%s'?", best);
    }
    if (nc == 0) {
        snprintf(hint + used, sizeof hint - used, "; this section takes no keys");
    } else if (nc <= 12) {
        used += (size_t)snprintf(hint + used, sizeof hint - used, " (valid keys:");
        for (size_t k = 0; k < nc && used < sizeof hint; k++) {
            used += (size_t)snprintf(hint + used, sizeof hint - used, "%s %s", k ? "," : "",
                                     cands[k]);
        }
        if (used < sizeof hint) {
            snprintf(hint + used, sizeof hint - used, ")");
        }
    } else if (!best) {
        snprintf(hint + used, sizeof hint - used, " (`mpsl plugins --params` lists the keys)");
    }
    return mpsl_err(err, "%s: unknown key '%s'%s%s", cfg_where(key, where, sizeof where),
                    key->text, in_context(context, ctx, sizeof ctx), hint);
}

static int ignored(const char *key, const char *const *ignore)
{
    for (size_t i = 0; ignore && ignore[i]; i++) {
        if (!strcmp(ignore[i], key)) {
            return 1;
        }
    }
    return 0;
}

int cfg_parse_params(const cfg_node *map, const mpsl_param_spec *specs, size_t n_specs,
                     void *out, size_t params_size, const char *context,
                     const char *const *ignore, mpsl_error *err)
{
    char where[512], ctx[256], why[600];
    if (out && params_size) {
        memset(out, 0, params_size);
    }
    if (n_specs && (!specs || !out)) {
        return mpsl_errs(err, MPSL_ERR_INTERNAL, "cfg_parse_params: no specs or output");
    }
    for (size_t k = 0; k < n_specs; k++) {
        int rc = check_spec(&specs[k], params_size, err);
        if (rc) {
            return rc;
        }
    }
    /* A section written as `encoder:` (null) means "all defaults", like an absent one. */
    if (map && map->type == CFG_SCALAR && cfg_is_null(map)) {
        map = NULL;
    }
    if (map && map->type != CFG_MAP) {
        pvalue v = {map, map->text, map->quoted};
        char got[128];
        describe(&v, got, sizeof got);
        return mpsl_err(err, "%s: expected a mapping (key: value lines)%s, got %s",
                        cfg_where(map, where, sizeof where), in_context(context, ctx, sizeof ctx),
                        got);
    }
    for (size_t i = 0; map && i < map->n; i++) {
        const char *key = map->items[i].key->text;
        size_t k = 0;
        while (k < n_specs && strcmp(specs[k].key, key)) {
            k++;
        }
        if (k == n_specs && !ignored(key, ignore)) {
            return unknown_key(map, i, specs, n_specs, ignore, context, err);
        }
    }
    for (size_t k = 0; k < n_specs; k++) {
        const mpsl_param_spec *s = &specs[k];
        unsigned char *dst = (unsigned char *)out + s->offset;
        long i = ignored(s->key, ignore) ? -1 : cfg_find(map, s->key);
        if (i >= 0) {
            const cfg_node *n = map->items[i].val;
            pvalue v = {n, n->type == CFG_SCALAR ? n->text : "", n->quoted};
            if (convert(s, &v, dst, why, sizeof why)) {
                /* The spec's help line says what the key is for: often the real hint. */
                int help = s->help && s->help[0];
                return mpsl_err(err, "%s: %s%s%s%s%s", cfg_where(n, where, sizeof where), why,
                                help ? "; " : "", help ? s->key : "", help ? ": " : "",
                                help ? s->help : "");
            }
        } else if (s->required) {
            const char *help = s->help && s->help[0] ? s->help : NULL;
            if (map) {
                cfg_where(map, where, sizeof where);
            } else {
                snprintf(where, sizeof where, "%s", context && context[0] ? context : "config");
            }
            return mpsl_err(err, "%s: missing required key '%s'%s%s%s%s", where, s->key,
                            in_context(context, ctx, sizeof ctx), help ? " (" : "",
                            help ? help : "", help ? ")" : "");
        } else if (s->def) {
            pvalue v = {NULL, s->def, 0};
            if (convert(s, &v, dst, why, sizeof why)) {
                return mpsl_errs(err, MPSL_ERR_INTERNAL,
                                 "parameter spec '%s'%s has a bad default \"%s\": %s (a bug in "
                                 "the plugin)",
                                 s->key, in_context(context, ctx, sizeof ctx), s->def, why);
            }
        }
    }
    return MPSL_OK;
}
