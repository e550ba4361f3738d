/* Landsat MTL reader: the ODL-like "KEY = VALUE" text USGS ships with every
 * Landsat product.
 *
 * The grammar accepted is deliberately narrow, so a damaged or foreign file
 * fails loudly instead of yielding half a scene:
 *   - every line is blank, "END", or "KEY = VALUE" (KEY of letters, digits
 *     and '_'; VALUE either quoted "..." or a bare word without quotes);
 *   - "GROUP = NAME" opens a group, "END_GROUP = NAME" closes the innermost
 *     one and must name it; groups must balance before "END";
 *   - after "END" only whitespace and NUL padding may follow (older MTLs
 *     are NUL-padded to a block size);
 *   - lines are at most MTL_LINE_MAX bytes, the file MTL_FILE_MAX bytes.
 * Any other input is AW_ERR_INPUT "FILE:LINE: what is wrong".
 *
 * The file is read whole into one buffer; entries point into it (the
 * buffer is NUL-terminated in place), so a loaded MTL is two allocations
 * plus the entry array. GROUP and END_GROUP lines are kept as entries too,
 * so aw_mtl_get(m, "GROUP") is the name of the outermost group. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <cpl_minixml.h>
#include <cpl_vsi.h>
#include "aralwatch/profile.h"

#define MTL_LINE_MAX 4096
#define MTL_FILE_MAX ((size_t)16 << 20)
#define MTL_SHOWN    40 /* bytes of an offending line quoted in messages */

typedef struct mtl_entry {
    const char *key;
    const char *val;
} mtl_entry;

struct aw_mtl {
    char *buf;
    mtl_entry *e;
    size_t n, cap;
};

typedef struct open_group {
    const char *name;
    int line;
} open_group;

void aw_mtl_free(aw_mtl *mtl)
{
    if (!mtl)
        return;
    free(mtl->buf);
    free(mtl->e);
    free(mtl);
}

const char *aw_mtl_get(const aw_mtl *mtl, const char *key)
{
    if (!mtl || !key)
        return NULL;
    for (size_t i = 0; i < mtl->n; i++)
        if (strcmp(mtl->e[i].key, key) == 0)
            return mtl->e[i].val;
    return NULL;
}

/* Read the whole file (at most MTL_FILE_MAX bytes) plus a NUL. */
static aw_status read_all(aw_ctx *ctx, const char *path, char **out,
                          size_t *len)
{
    VSILFILE *f = VSIFOpenL(path, "rb"); /* also inside /vsizip/ */
    if (!f)
        return aw_fail(ctx, AW_ERR_INPUT, "%s: cannot open", path);
    size_t cap = 16384, n = 0;
    char *buf = malloc(cap);
    if (!buf) {
        VSIFCloseL(f);
        return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    }
    for (;;) {
        if (n == cap - 1) {
            if (cap > MTL_FILE_MAX) {
                free(buf);
                VSIFCloseL(f);
                return aw_fail(ctx, AW_ERR_INPUT,
                               "%s: too large for an MTL file (over %zu "
                               "bytes)",
                               path, MTL_FILE_MAX);
            }
            char *b = realloc(buf, 2 * cap);
            if (!b) {
                free(buf);
                VSIFCloseL(f);
                return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
            }
            buf = b;
            cap *= 2;
        }
        size_t got = VSIFReadL(buf + n, 1, cap - 1 - n, f);
        n += got;
        if (got == 0)
            break;
    }
    /* GDAL 3.6 has no VSIFErrorL: a read error ends the text early, which
     * the parser then reports (unbalanced GROUP or missing END). */
    VSIFCloseL(f);
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return AW_OK;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

static int is_key_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '_';
}

/* The first MTL_SHOWN bytes of s (length n) with non-printable bytes as
 * '?', for messages. */
static void shown(char *dst, const char *s, size_t n)
{
    size_t k = n < MTL_SHOWN ? n : MTL_SHOWN;
    for (size_t i = 0; i < k; i++) {
        unsigned char c = (unsigned char)s[i];
        dst[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (n > MTL_SHOWN) {
        memcpy(dst + k, "...", 3);
        k += 3;
    }
    dst[k] = '\0';
}

static aw_status add_entry(aw_ctx *ctx, aw_mtl *m, const char *key,
                           const char *val)
{
    if (m->n == m->cap) {
        size_t cap = m->cap ? 2 * m->cap : 256;
        mtl_entry *e = realloc(m->e, cap * sizeof *e);
        if (!e)
            return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
        m->e = e;
        m->cap = cap;
    }
    m->e[m->n].key = key;
    m->e[m->n].val = val;
    m->n++;
    return AW_OK;
}

/* Parse one trimmed, non-empty line s[0..n) (NUL-terminated in place) into
 * key and value. Returns NULL on success or a static reason. */
static const char *split_line(char *s, size_t n, char **key, char **val)
{
    size_t k = 0;
    while (k < n && is_key_char(s[k]))
        k++;
    if (k == 0)
        return "expected 'KEY = VALUE'";
    size_t i = k;
    while (i < n && is_space(s[i]))
        i++;
    if (i == n || s[i] != '=')
        return "expected 'KEY = VALUE'";
    s[k] = '\0';
    i++;
    while (i < n && is_space(s[i]))
        i++;
    if (i == n)
        return "missing value after '='";
    char *v = s + i;
    size_t vn = n - i;
    if (v[0] == '"') {
        if (vn < 2 || v[vn - 1] != '"')
            return "unterminated quoted value";
        if (memchr(v + 1, '"', vn - 2))
            return "stray '\"' inside a quoted value";
        v[vn - 1] = '\0';
        v++;
    }
    else if (memchr(v, '"', vn)) {
        return "stray '\"' in an unquoted value";
    }
    *key = s;
    *val = v;
    return NULL;
}

/* Append the MTL text form of an XML element: a leaf becomes
 * KEY = "VALUE", an element with children a GROUP. */
static int xml_to_text(const CPLXMLNode *el, FILE *f, int depth)
{
    if (depth > 16)
        return -1;
    int has_child = 0;
    for (const CPLXMLNode *c = el->psChild; c; c = c->psNext)
        has_child |= c->eType == CXT_Element;
    if (!has_child) {
        const char *v = "";
        for (const CPLXMLNode *c = el->psChild; c; c = c->psNext)
            if (c->eType == CXT_Text)
                v = c->pszValue;
        fprintf(f, "%s = \"", el->pszValue);
        for (; *v; v++)
            fputc(*v == '"' || *v == '\n' ? '\'' : *v, f);
        fputs("\"\n", f);
        return 0;
    }
    fprintf(f, "GROUP = %s\n", el->pszValue);
    for (const CPLXMLNode *c = el->psChild; c; c = c->psNext)
        if (c->eType == CXT_Element && xml_to_text(c, f, depth + 1) != 0)
            return -1;
    fprintf(f, "END_GROUP = %s\n", el->pszValue);
    return 0;
}

/* A Collection 2 _MTL.xml holds the same keys as the _MTL.txt, as
 * elements: rewritten into the text form, then parsed like it. */
static aw_status read_xml_as_text(aw_ctx *ctx, const char *path, char **out,
                                  size_t *len)
{
    CPLXMLNode *root = CPLParseXMLFile(path);
    const CPLXMLNode *top = root;
    while (top && top->eType != CXT_Element)
        top = top->psNext;
    if (top && strcmp(top->pszValue, "?xml") == 0)
        for (top = top->psNext; top && top->eType != CXT_Element;)
            top = top->psNext;
    if (!top) {
        CPLDestroyXMLNode(root);
        return aw_fail(ctx, AW_ERR_INPUT, "%s: not an XML metadata file", path);
    }
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    int bad = !f || xml_to_text(top, f, 0) != 0;
    if (f) {
        fputs("END\n", f);
        fclose(f);
    }
    CPLDestroyXMLNode(root);
    if (bad) {
        free(buf);
        return aw_fail(ctx, AW_ERR_INPUT, "%s: XML nested too deeply", path);
    }
    *out = buf;
    *len = n;
    return AW_OK;
}

aw_status aw_mtl_load(aw_ctx *ctx, const char *path, aw_mtl **out)
{
    if (!path || !out)
        return aw_fail(ctx, AW_ERR_INTERNAL, "aw_mtl_load: NULL argument");
    aw_mtl *m = calloc(1, sizeof *m);
    if (!m)
        return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    size_t len = 0;
    size_t pl = strlen(path);
    aw_status st = pl > 4 && strcasecmp(path + pl - 4, ".xml") == 0
                       ? read_xml_as_text(ctx, path, &m->buf, &len)
                       : read_all(ctx, path, &m->buf, &len);
    if (st != AW_OK) {
        free(m);
        return st;
    }

    /* Trailing NUL padding (and blank lines) are not part of the text. */
    while (len > 0 && (m->buf[len - 1] == '\0' || m->buf[len - 1] == '\n' ||
                       is_space(m->buf[len - 1])))
        len--;
    m->buf[len] = '\0';

    open_group *groups = NULL;
    size_t depth = 0, gcap = 0;
    int ended = 0, line = 0;
    char what[MTL_SHOWN + 4];
    char *p = m->buf, *end = m->buf + len;
    while (p < end && st == AW_OK) {
        line++;
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *eol = nl ? nl : end;
        size_t n = (size_t)(eol - p);
        char *next = nl ? nl + 1 : end;
        if (n > MTL_LINE_MAX && !ended) {
            st = aw_fail(ctx, AW_ERR_INPUT, "%s:%d: line longer than %d bytes",
                         path, line, MTL_LINE_MAX);
            break;
        }
        if (ended) {
            /* Only blanks and NUL padding may follow END. */
            for (size_t i = 0; i < n; i++) {
                if (p[i] != '\0' && !is_space(p[i])) {
                    shown(what, p + i, n - i);
                    st = aw_fail(ctx, AW_ERR_INPUT,
                                 "%s:%d: text after END: '%s'", path, line,
                                 what);
                    break;
                }
            }
            p = next;
            continue;
        }
        /* Trim; NUL and other control bytes inside a line are errors. */
        char *s = p;
        while (n > 0 && is_space(s[0])) {
            s++;
            n--;
        }
        while (n > 0 && is_space(s[n - 1]))
            n--;
        s[n] = '\0';
        p = next;
        if (n == 0)
            continue;
        int bad_byte = 0;
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)s[i] < 0x20 && s[i] != '\t')
                bad_byte = 1;
        if (bad_byte) {
            shown(what, s, n);
            st = aw_fail(ctx, AW_ERR_INPUT,
                         "%s:%d: control or NUL byte in line '%s'", path, line,
                         what);
            break;
        }
        if (strcmp(s, "END") == 0) {
            if (depth > 0) {
                st = aw_fail(ctx, AW_ERR_INPUT,
                             "%s:%d: END while GROUP %s (line %d) is open",
                             path, line, groups[depth - 1].name,
                             groups[depth - 1].line);
                break;
            }
            ended = 1;
            continue;
        }
        shown(what, s, n);
        char *key = NULL, *val = NULL;
        const char *why = split_line(s, n, &key, &val);
        if (why) {
            st = aw_fail(ctx, AW_ERR_INPUT, "%s:%d: %s, got '%s'", path, line,
                         why, what);
            break;
        }
        if (strcmp(key, "GROUP") == 0) {
            if (depth == gcap) {
                size_t cap = gcap ? 2 * gcap : 8;
                open_group *g = realloc(groups, cap * sizeof *g);
                if (!g) {
                    st = aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
                    break;
                }
                groups = g;
                gcap = cap;
            }
            groups[depth].name = val;
            groups[depth].line = line;
            depth++;
        }
        else if (strcmp(key, "END_GROUP") == 0) {
            if (depth == 0) {
                st = aw_fail(ctx, AW_ERR_INPUT,
                             "%s:%d: END_GROUP = %s without an open GROUP",
                             path, line, val);
                break;
            }
            if (strcmp(val, groups[depth - 1].name) != 0) {
                st = aw_fail(ctx, AW_ERR_INPUT,
                             "%s:%d: END_GROUP = %s does not close GROUP = %s "
                             "(line %d)",
                             path, line, val, groups[depth - 1].name,
                             groups[depth - 1].line);
                break;
            }
            depth--;
        }
        st = add_entry(ctx, m, key, val);
    }
    if (st == AW_OK && !ended) {
        if (depth > 0)
            st = aw_fail(ctx, AW_ERR_INPUT,
                         "%s:%d: end of file while GROUP %s (line %d) is open",
                         path, line, groups[depth - 1].name,
                         groups[depth - 1].line);
        else
            st = aw_fail(ctx, AW_ERR_INPUT, "%s:%d: missing END line", path,
                         line > 0 ? line : 1);
    }
    free(groups);
    if (st != AW_OK) {
        aw_mtl_free(m);
        return st;
    }
    *out = m;
    return AW_OK;
}
