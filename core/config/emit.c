/* emit.c: cfg_to_yaml(): the resolved tree as canonical block YAML (what `mpsl` stores with
 * each run). libyaml's emitter picks quoting; scalars that were quoted stay quoted, so a
 * string "5" is still a string when the text is read back. */
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "cfg_internal.h"
#include "util/util.h"

typedef struct outbuf {
    char *data;
    size_t n, cap;
    int failed;
} outbuf;

static int write_out(void *ctx, unsigned char *buf, size_t size)
{
    outbuf *o = ctx;
    if (o->n + size + 1 > o->cap) {
        size_t cap = o->cap ? o->cap : 256;
        while (cap < o->n + size + 1) {
            cap *= 2;
        }
        char *d = realloc(o->data, cap);
        if (!d) {
            o->failed = 1;
            return 0;
        }
        o->data = d;
        o->cap = cap;
    }
    memcpy(o->data + o->n, buf, size);
    o->n += size;
    o->data[o->n] = '\0';
    return 1;
}

/* Would a plain key with this text read back as something else? The loader refuses plain
 * null keys (`null:`, `~:`), and a key such as `true`, `yes` or `5` reads as a bool or a
 * number in other YAML readers (PyYAML's YAML 1.1 rules: yes/no/on/off too; `<<` merges). A
 * `--set model.tokenizers.null.plugin=x` key is plain, and emitting it plain made the run's
 * stored config unreadable by `mpsl run --from-run`. Keys are always strings, so quoting
 * these changes nothing but how they read. */
static int key_needs_quotes(const char *t)
{
    static const char *const yaml11[] = {"yes", "Yes", "YES", "no", "No", "NO", "on", "On",
                                         "ON",  "off", "Off", "OFF", "<<"};
    if (cfg_text_is_typed(t)) {
        return 1;
    }
    for (size_t i = 0; i < MPSL_COUNT(yaml11); i++) {
        if (!strcmp(t, yaml11[i])) {
            return 1;
        }
    }
    return 0;
}

static int emit_scalar(yaml_emitter_t *e, const cfg_node *n, int is_key)
{
    yaml_event_t ev;
    /* Plain scalars came from plain text, so the emitter can write them plain again;
     * quoted ones are forced into quotes (single where possible, else double). */
    yaml_scalar_style_t style = YAML_PLAIN_SCALAR_STYLE;
    int quoted = n->quoted || (is_key && key_needs_quotes(n->text));
    if (quoted) {
        /* Double quotes show line breaks as \n instead of folding them over lines. */
        style = strpbrk(n->text, "\n\t") ? YAML_DOUBLE_QUOTED_SCALAR_STYLE
                                         : YAML_SINGLE_QUOTED_SCALAR_STYLE;
    }
    /* quoted_implicit = 1 even for plain ones: when a plain string cannot be written plain
     * (a tab, a leading '-'), quoting it does not change what it means, so no "!" tag. */
    return yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)n->text,
                                        (int)strlen(n->text), !quoted, 1, style) &&
           yaml_emitter_emit(e, &ev);
}

/* Depth is bounded by the loader's and --set's limits, so recursion is safe here. */
static int emit_node(yaml_emitter_t *e, const cfg_node *n)
{
    yaml_event_t ev;
    if (n->type == CFG_SCALAR) {
        return emit_scalar(e, n, 0);
    }
    int ok = n->type == CFG_MAP
                 ? yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1,
                                                       YAML_BLOCK_MAPPING_STYLE)
                 : yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1,
                                                        YAML_BLOCK_SEQUENCE_STYLE);
    if (!ok || !yaml_emitter_emit(e, &ev)) {
        return 0;
    }
    for (size_t i = 0; i < n->n; i++) {
        if ((n->items[i].key && !emit_scalar(e, n->items[i].key, 1)) ||
            !emit_node(e, n->items[i].val)) {
            return 0;
        }
    }
    ok = n->type == CFG_MAP ? yaml_mapping_end_event_initialize(&ev)
                            : yaml_sequence_end_event_initialize(&ev);
    return ok && yaml_emitter_emit(e, &ev);
}

char *cfg_to_yaml(const cfg_node *n)
{
    if (!n) {
        return NULL;
    }
    outbuf o = {0};
    yaml_emitter_t e;
    yaml_event_t ev;
    if (!yaml_emitter_initialize(&e)) {
        return NULL;
    }
    yaml_emitter_set_output(&e, write_out, &o);
    yaml_emitter_set_unicode(&e, 1);
    yaml_emitter_set_width(&e, -1); /* never fold long strings */
    yaml_emitter_set_indent(&e, 2);
    int ok = yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING) &&
             yaml_emitter_emit(&e, &ev) &&
             yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1) &&
             yaml_emitter_emit(&e, &ev) && emit_node(&e, n) &&
             yaml_document_end_event_initialize(&ev, 1) && yaml_emitter_emit(&e, &ev) &&
             yaml_stream_end_event_initialize(&ev) && yaml_emitter_emit(&e, &ev) &&
             yaml_emitter_flush(&e);
    yaml_emitter_delete(&e);
    if (!ok || o.failed) {
        free(o.data);
        return NULL;
    }
    return o.data;
}
