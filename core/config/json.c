/* json.c: cfg_to_json(): the resolved tree as one line of JSON, stored beside the YAML with
 * each run so that SQLite's json_extract(config_json, '$.train.optimizer.lr') can group and
 * filter runs by any hyperparameter. Plain scalars keep the type YAML gives them: a number
 * is a JSON number, true/false a boolean, null/~ null; anything quoted, and numbers JSON
 * cannot write (.inf, .nan, 0x1f), stay strings. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg_internal.h"
#include "util/util.h"

typedef struct jbuf {
    char *data;
    size_t n, cap;
    int failed;
} jbuf;

static void put(jbuf *b, const char *s, size_t len)
{
    if (b->failed) {
        return;
    }
    if (b->n + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + len + 1) {
            cap *= 2;
        }
        char *d = realloc(b->data, cap);
        if (!d) {
            b->failed = 1;
            return;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->n, s, len);
    b->n += len;
    b->data[b->n] = '\0';
}

static void puts_(jbuf *b, const char *s) { put(b, s, strlen(s)); }

static void put_string(jbuf *b, const char *s)
{
    puts_(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\', esc[1] = (char)*p, esc[2] = '\0';
        } else if (*p == '\n') {
            strcpy(esc, "\\n");
        } else if (*p == '\t') {
            strcpy(esc, "\\t");
        } else if (*p < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", *p);
        } else {
            esc[0] = (char)*p, esc[1] = '\0';
        }
        puts_(b, esc);
    }
    puts_(b, "\"");
}

/* A plain scalar YAML reads as a number that JSON can write too: JSON wants a digit before
 * and after a decimal point and no leading '+' or zeros, so "0.5" is written as is, ".5" and
 * "+3" through %.17g; "1_000" and hex stay strings. */
static int put_number(jbuf *b, const char *t)
{
    char *end;
    double v = strtod(t, &end);
    if (*t == '\0' || *end != '\0' || !isfinite(v) || strchr(t, 'x') || strchr(t, 'X')) {
        return 0;
    }
    const char *p = t + (*t == '-');
    int plain_json = p[0] >= '0' && p[0] <= '9' && !(p[0] == '0' && p[1] >= '0' && p[1] <= '9');
    const char *dot = strchr(p, '.');
    if (dot && !(dot[1] >= '0' && dot[1] <= '9')) {
        plain_json = 0;
    }
    if (plain_json) {
        puts_(b, t);
    } else {
        char num[40];
        snprintf(num, sizeof num, "%.17g", v);
        puts_(b, num);
    }
    return 1;
}

static void put_scalar(jbuf *b, const cfg_node *n)
{
    const char *t = n->text;
    if (n->quoted || !cfg_text_is_typed(t)) {
        put_string(b, t);
    } else if (cfg_text_is_null(t)) {
        puts_(b, "null");
    } else if (!strcmp(t, "true") || !strcmp(t, "True") || !strcmp(t, "TRUE")) {
        puts_(b, "true");
    } else if (!strcmp(t, "false") || !strcmp(t, "False") || !strcmp(t, "FALSE")) {
        puts_(b, "false");
    } else if (!put_number(b, t)) {
        put_string(b, t);
    }
}

static void put_node(jbuf *b, const cfg_node *n)
{
    if (!n) {
        puts_(b, "null");
        return;
    }
    switch (n->type) {
    case CFG_SCALAR:
        put_scalar(b, n);
        return;
    case CFG_SEQ:
        puts_(b, "[");
        for (size_t i = 0; i < n->n; i++) {
            puts_(b, i ? "," : "");
            put_node(b, n->items[i].val);
        }
        puts_(b, "]");
        return;
    case CFG_MAP:
        puts_(b, "{");
        for (size_t i = 0; i < n->n; i++) {
            puts_(b, i ? "," : "");
            put_string(b, n->items[i].key->text);
            puts_(b, ":");
            put_node(b, n->items[i].val);
        }
        puts_(b, "}");
        return;
    }
    puts_(b, "null");
}

char *cfg_to_json(const cfg_node *n)
{
    jbuf b = {0};
    put_node(&b, n);
    if (b.failed) {
        free(b.data);
        return NULL;
    }
    return b.data;
}
