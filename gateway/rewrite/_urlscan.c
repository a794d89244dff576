/* The body rewriter's URL match loop in C: an optional accelerator for gateway/rewrite/urlscan.py.
 *
 * scan(buf, start, limit, memo, context_ends) finds the same URL prefixes as urlscan.scan_py,
 * which is the reference (the test suite runs both on generated documents and compares them):
 * every ``//host[:port]`` in any of its written forms starting before ``limit + 16``, with
 * its ``http:``/``https:`` (or ``ws:``/``wss:``, when no scheme byte comes right before, as in
 * ``news:``) scheme in any written form, looked up in the rule set's memo.
 * One pass over the buffer replaces five regular-expression scans and, more to the point, the
 * Python bytecode run for each match, which is what limited the pure-Python loop.
 *
 * It only reads: ``memo`` is filled by the Python side, for the keys this returns as unknown.
 *
 * splice(buf, start, stop, hits) builds the rewritten bytes from the hits in one allocation,
 * as urlscan.splice_py does with slices and a join.
 *
 * tag_starts(buf, start, limit) lists where urlscan.TAG_HINT matches, by memchr for ``<``
 * (the regular expression engine steps through every byte for it): the first bytes of a
 * script, link or meta tag, or an img, video or audio tag with ``crossorigin`` in it.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#define SCHEME_REACH 16 /* how far before ``//`` a scheme can start, as in urlscan.py */
#define MAX_LABEL 63
#define MAX_LABELS 9
#define MEDIA_REACH 1024 /* as urlscan.MEDIA_REACH */

static unsigned char LABEL[256];  /* [A-Za-z0-9_-]: a host label's bytes */
static unsigned char EDGE[256];   /* [A-Za-z0-9_]: a label's first and last byte */
static unsigned char BARE[256];   /* bytes after which a scheme-less ``//host`` is no URL */
static unsigned char SCHEME[256]; /* [A-Za-z0-9+.-]: a URL scheme's bytes */
static unsigned char HINT[256];   /* bit k < 4: a byte of TAG_HINT's class k + 1; 16: [iIvVaA] */
static const unsigned char TRIGGERS[] = "/\\%&"; /* the first byte of every way to write ``//`` */
#define N_TRIGGERS 4

static inline unsigned char lower(unsigned char c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }

/* s[i:i+len] equals the lower-case literal ``lit``, ignoring case. */
static int ieq(const unsigned char *s, Py_ssize_t n, Py_ssize_t i, const char *lit, Py_ssize_t len)
{
    if (i < 0 || i + len > n)
        return 0;
    for (Py_ssize_t k = 0; k < len; k++)
        if (lower(s[i + k]) != (unsigned char)lit[k])
            return 0;
    return 1;
}

/* Length of one HTML-entity slash at i (``&#0*47;``, ``&#x0*2f;``, ``&sol;``), or 0. */
static Py_ssize_t entity_slash(const unsigned char *s, Py_ssize_t n, Py_ssize_t i)
{
    if (i >= n || s[i] != '&')
        return 0;
    if (ieq(s, n, i + 1, "sol;", 4))
        return 5;
    Py_ssize_t j = i + 1;
    if (j >= n || s[j] != '#')
        return 0;
    j++;
    int hex = j < n && lower(s[j]) == 'x';
    j += hex;
    while (j < n && s[j] == '0')
        j++;
    return ieq(s, n, j, hex ? "2f;" : "47;", 3) ? j + 3 - i : 0;
}

/* Length of the written ``//`` at i, or 0. */
static Py_ssize_t slashes(const unsigned char *s, Py_ssize_t n, Py_ssize_t i)
{
    switch (s[i]) {
    case '/':
        return i + 1 < n && s[i + 1] == '/' ? 2 : 0;
    case '\\':
        if (ieq(s, n, i, "\\/\\/", 4))
            return 4;
        return ieq(s, n, i, "\\u002f\\u002f", 12) ? 12 : 0;
    case '%':
        return ieq(s, n, i, "%2f%2f", 6) ? 6 : 0;
    case '&': {
        Py_ssize_t first = entity_slash(s, n, i);
        Py_ssize_t second = first ? entity_slash(s, n, i + first) : 0;
        return second ? first + second : 0;
    }
    }
    return 0;
}

/* End of the host at i, or -1. The reference pattern's host is an atomic group: the first
 * label is its whole run of label bytes (so at most 63 and not ending in '-'), each later label
 * the longest valid prefix of its run, up to nine labels in all, at least two. */
static Py_ssize_t host_end(const unsigned char *s, Py_ssize_t n, Py_ssize_t i)
{
    if (i >= n || !EDGE[s[i]])
        return -1;
    Py_ssize_t j = i;
    while (j < n && LABEL[s[j]])
        j++;
    if (j - i > MAX_LABEL || s[j - 1] == '-')
        return -1;
    int labels = 1;
    while (labels < MAX_LABELS && j + 1 < n && s[j] == '.' && EDGE[s[j + 1]]) {
        Py_ssize_t k = j + 1, r = k;
        while (r < n && r - k < MAX_LABEL && LABEL[s[r]])
            r++;
        while (s[r - 1] == '-')
            r--;
        j = r;
        labels++;
    }
    return labels >= 2 ? j : -1;
}

/* End of ``//host[:port]`` at i (as the reference pattern, port atomic too), or -1. */
static Py_ssize_t url_end(const unsigned char *s, Py_ssize_t n, Py_ssize_t i, Py_ssize_t *host_at)
{
    Py_ssize_t width = slashes(s, n, i);
    if (!width)
        return -1;
    *host_at = i + width;
    Py_ssize_t p = host_end(s, n, i + width);
    if (p < 0)
        return -1;
    Py_ssize_t digits = p < n && s[p] == ':' ? p + 1 : (ieq(s, n, p, "%3a", 3) ? p + 3 : -1);
    if (digits >= 0 && digits < n && s[digits] >= '0' && s[digits] <= '9') {
        p = digits;
        while (p < n && p - digits < 5 && s[p] >= '0' && s[p] <= '9')
            p++;
    }
    return p < n && LABEL[s[p]] ? -1 : p;
}

/* A ``ws``/``wss`` scheme at ``begin`` is one: no scheme byte right before it (``news:``). */
static int ws_at(const unsigned char *s, Py_ssize_t begin)
{
    return begin == 0 || !SCHEME[s[begin - 1]];
}

/* Start of the ``http``/``https``/``ws``/``wss`` right before ``colon`` if it starts at or
 * after lo, else -1. */
static Py_ssize_t scheme_start(const unsigned char *s, Py_ssize_t n, Py_ssize_t colon, Py_ssize_t lo)
{
    if (colon - 5 >= lo && ieq(s, n, colon - 5, "https", 5))
        return colon - 5;
    if (colon - 4 >= lo && ieq(s, n, colon - 4, "http", 4))
        return colon - 4;
    if (colon - 3 >= lo && ieq(s, n, colon - 3, "wss", 3))
        return ws_at(s, colon - 3) ? colon - 3 : -1;
    if (colon - 2 >= lo && ieq(s, n, colon - 2, "ws", 2))
        return ws_at(s, colon - 2) ? colon - 2 : -1;
    return -1;
}

/* Where the encoded colon ending at ``at`` begins (``%3a``, ``&colon;``, ``&#0*58;``,
 * ``&#x0*3a;``), or -1. */
static Py_ssize_t encoded_colon(const unsigned char *s, Py_ssize_t n, Py_ssize_t at, Py_ssize_t lo)
{
    if (ieq(s, n, at - 3, "%3a", 3))
        return at - 3;
    if (ieq(s, n, at - 7, "&colon;", 7))
        return at - 7;
    if (at - 1 < lo || s[at - 1] != ';' || at - 3 < lo)
        return -1;
    int hex = lower(s[at - 2]) == 'a' && s[at - 3] == '3';
    if (!hex && !(s[at - 2] == '8' && s[at - 3] == '5'))
        return -1;
    Py_ssize_t j = at - 4;
    while (j >= lo && s[j] == '0')
        j--;
    if (hex) {
        if (j < lo || lower(s[j]) != 'x')
            return -1;
        j--;
    }
    return j - 1 >= lo && s[j] == '#' && s[j - 1] == '&' ? j - 1 : -1;
}

/* Where the URL whose ``//`` is at ``at`` begins: its scheme, or ``at``; -1 when it is no URL. */
static Py_ssize_t url_begin(const unsigned char *s, Py_ssize_t n, Py_ssize_t at, Py_ssize_t start)
{
    unsigned char prev = at > start ? s[at - 1] : 0;
    Py_ssize_t begin = at;
    if (prev == ':') {
        if (at - 6 >= start && ieq(s, n, at - 6, "https", 5))
            return at - 6;
        if (at - 5 >= start && ieq(s, n, at - 5, "http", 4))
            return at - 5;
        if (at - 4 >= start && ieq(s, n, at - 4, "wss", 3))
            return ws_at(s, at - 4) ? at - 4 : -1;
        if (at - 3 >= start && ieq(s, n, at - 3, "ws", 2))
            return ws_at(s, at - 3) ? at - 3 : -1;
        return -1; /* ftp://host and other schemes */
    }
    if (prev == 'a' || prev == 'A' || prev == ';') {
        Py_ssize_t lo = at - SCHEME_REACH > start ? at - SCHEME_REACH : start;
        Py_ssize_t colon = encoded_colon(s, n, at, lo);
        Py_ssize_t scheme = colon >= 0 ? scheme_start(s, n, colon, lo) : -1;
        if (scheme >= 0)
            begin = scheme;
    }
    return begin == at && BARE[prev] ? -1 : begin;
}

/* `` href=`` or `` src=`` (any case, quoted or not) right before ``begin``. */
static int after_attribute(const unsigned char *s, Py_ssize_t n, Py_ssize_t begin)
{
    Py_ssize_t j = begin;
    if (j > 0 && (s[j - 1] == '"' || s[j - 1] == '\''))
        j--;
    if (j < 1 || s[j - 1] != '=')
        return 0;
    j--;
    if (ieq(s, n, j - 4, "href", 4))
        j -= 4;
    else if (ieq(s, n, j - 3, "src", 3))
        j -= 3;
    else
        return 0;
    return j > 0 && (s[j - 1] == ' ' || s[j - 1] == '\t' || s[j - 1] == '\r' || s[j - 1] == '\n');
}

/* The first trigger byte at or after ``from`` (``reach`` if none). ``next[k]`` remembers where
 * TRIGGERS[k] comes next, so each byte is searched once per trigger, by memchr (vectorised),
 * instead of a table lookup per byte: a page's text is mostly bytes between triggers. */
static Py_ssize_t next_trigger(
    const unsigned char *s, Py_ssize_t from, Py_ssize_t reach, Py_ssize_t next[N_TRIGGERS])
{
    Py_ssize_t first = reach;
    for (int k = 0; k < N_TRIGGERS; k++) {
        if (next[k] < from) {
            const unsigned char *p
                = from < reach ? memchr(s + from, TRIGGERS[k], (size_t)(reach - from)) : NULL;
            next[k] = p ? p - s : reach;
        }
        if (next[k] < first)
            first = next[k];
    }
    return first;
}

/* Append (a, b, c) to list; c is an int when third is NULL, else the object third. */
static int append_hit(PyObject *list, Py_ssize_t a, Py_ssize_t b, Py_ssize_t c, PyObject *third)
{
    PyObject *item = PyTuple_New(3);
    if (item == NULL)
        return -1;
    PyObject *x = PyLong_FromSsize_t(a), *y = PyLong_FromSsize_t(b);
    PyObject *z = third ? Py_NewRef(third) : PyLong_FromSsize_t(c);
    PyTuple_SET_ITEM(item, 0, x);
    PyTuple_SET_ITEM(item, 1, y);
    PyTuple_SET_ITEM(item, 2, z);
    int failed = x == NULL || y == NULL || z == NULL || PyList_Append(list, item) < 0;
    Py_DECREF(item);
    return failed ? -1 : 0;
}

static PyObject *scan(PyObject *Py_UNUSED(self), PyObject *args)
{
    Py_buffer view;
    Py_ssize_t start, limit;
    PyObject *memo, *ends;
    int attributes;
    if (!PyArg_ParseTuple(
            args, "y*nnO!Op", &view, &start, &limit, &PyDict_Type, &memo, &ends, &attributes))
        return NULL;
    unsigned char context[256] = {0};
    int h_hosts = ends != Py_None;
    if (h_hosts) {
        if (!PyBytes_Check(ends)) {
            PyBuffer_Release(&view);
            PyErr_SetString(PyExc_TypeError, "context_ends must be bytes or None");
            return NULL;
        }
        const unsigned char *e = (const unsigned char *)PyBytes_AS_STRING(ends);
        for (Py_ssize_t k = 0; k < PyBytes_GET_SIZE(ends); k++)
            context[e[k]] = 1;
    }
    const unsigned char *s = view.buf;
    Py_ssize_t n = view.len;
    Py_ssize_t reach = limit + SCHEME_REACH < n ? limit + SCHEME_REACH : n;
    PyObject *hits = PyList_New(0), *maybe = PyList_New(0), *unknown = PyList_New(0);
    if (hits == NULL || maybe == NULL || unknown == NULL)
        goto error;
    Py_ssize_t next[N_TRIGGERS] = {-1, -1, -1, -1};
    Py_ssize_t at, from = start < 0 ? 0 : start;
    while ((at = next_trigger(s, from, reach, next)) < reach) {
        from = at + 1;
        Py_ssize_t host_at;
        Py_ssize_t end = url_end(s, n, at, &host_at);
        if (end < 0)
            continue;
        from = end; /* resume after the match, as finditer does */
        Py_ssize_t begin = url_begin(s, n, at, start);
        if (begin < 0 || begin >= limit)
            continue;
        PyObject *key = PyBytes_FromStringAndSize((const char *)s + begin, end - begin);
        if (key == NULL)
            goto error;
        PyObject *entry = PyDict_GetItemWithError(memo, key); /* borrowed */
        Py_DECREF(key);
        if (entry == NULL) {
            if (PyErr_Occurred())
                goto error;
            if (append_hit(unknown, begin, at, end, NULL) < 0)
                goto error;
        } else if (entry != Py_None) {
            if (!PyTuple_Check(entry) || PyTuple_GET_SIZE(entry) != 2) {
                PyErr_SetString(PyExc_TypeError, "memo values must be (bytes, bool) or None");
                goto error;
            }
            PyObject *new = PyTuple_GET_ITEM(entry, 0);
            if (PyTuple_GET_ITEM(entry, 1) == Py_True) {
                if (append_hit(hits, begin, end, 0, new) < 0)
                    goto error;
            } else if (!h_hosts) {
                /* H/D hosts are not URLs in this kind of body */
            } else if (attributes && after_attribute(s, n, begin)) {
                if (append_hit(hits, begin, end, 0, new) < 0)
                    goto error;
            } else if (begin == 0 || context[s[begin - 1]]) {
                if (append_hit(maybe, begin, end, 0, new) < 0)
                    goto error;
            }
        }
    }
    PyBuffer_Release(&view);
    return Py_BuildValue("(NNN)", hits, maybe, unknown);
error:
    PyBuffer_Release(&view);
    Py_XDECREF(hits);
    Py_XDECREF(maybe);
    Py_XDECREF(unknown);
    return NULL;
}

/* Unpack a hit (begin, end, bytes or None); -1 with an exception when it is malformed. */
static int hit_fields(PyObject *hit, Py_ssize_t *begin, Py_ssize_t *end, PyObject **new)
{
    /* Plain ints only: converting anything else could run Python code between the passes. */
    if (!PyTuple_Check(hit) || PyTuple_GET_SIZE(hit) != 3 || !PyLong_Check(PyTuple_GET_ITEM(hit, 0))
        || !PyLong_Check(PyTuple_GET_ITEM(hit, 1))) {
        PyErr_SetString(PyExc_TypeError, "hits must be (begin, end, bytes or None)");
        return -1;
    }
    *begin = PyLong_AsSsize_t(PyTuple_GET_ITEM(hit, 0));
    *end = PyLong_AsSsize_t(PyTuple_GET_ITEM(hit, 1));
    *new = PyTuple_GET_ITEM(hit, 2);
    if (PyErr_Occurred())
        return -1;
    if (*new != Py_None && !PyBytes_Check(*new)) {
        PyErr_SetString(PyExc_TypeError, "a replacement must be bytes or None");
        return -1;
    }
    return 0;
}

static PyObject *splice(PyObject *Py_UNUSED(self), PyObject *args)
{
    Py_buffer view;
    Py_ssize_t start, stop;
    PyObject *hits;
    if (!PyArg_ParseTuple(args, "y*nnO!", &view, &start, &stop, &PyList_Type, &hits))
        return NULL;
    PyObject *out = NULL;
    Py_ssize_t count = PyList_GET_SIZE(hits), size = 0, last = start, begin, end;
    PyObject *new;
    if (start < 0 || stop > view.len || start > stop) {
        PyErr_SetString(PyExc_ValueError, "start and stop must lie in the buffer, in order");
        goto done;
    }
    for (Py_ssize_t k = 0; k < count; k++) { /* first the size, checking every hit */
        if (hit_fields(PyList_GET_ITEM(hits, k), &begin, &end, &new) < 0)
            goto done;
        if (new == Py_None)
            continue;
        if (begin < last || end < begin || end > stop) {
            PyErr_SetString(PyExc_ValueError, "hits must be in order, apart, inside the range");
            goto done;
        }
        size += (begin - last) + PyBytes_GET_SIZE(new);
        last = end;
    }
    size += stop - last;
    out = PyBytes_FromStringAndSize(NULL, size);
    if (out == NULL)
        goto done;
    char *to = PyBytes_AS_STRING(out);
    const char *from = view.buf;
    last = start;
    for (Py_ssize_t k = 0; k < count; k++) {
        hit_fields(PyList_GET_ITEM(hits, k), &begin, &end, &new); /* checked above */
        if (new == Py_None)
            continue;
        memcpy(to, from + last, begin - last);
        to += begin - last;
        memcpy(to, PyBytes_AS_STRING(new), PyBytes_GET_SIZE(new));
        to += PyBytes_GET_SIZE(new);
        last = end;
    }
    memcpy(to, from + last, stop - last);
done:
    PyBuffer_Release(&view);
    return out;
}

/* ``<img``, ``<video`` or ``<audio`` (any case) at p, ending a word, with ``crossorigin`` (any
 * case) starting at most MEDIA_REACH bytes after the name and before any ``<`` or ``>``. */
static int media_hint(const unsigned char *s, Py_ssize_t n, Py_ssize_t p)
{
    Py_ssize_t name = ieq(s, n, p + 1, "img", 3) ? 3
        : (ieq(s, n, p + 1, "video", 5) || ieq(s, n, p + 1, "audio", 5)) ? 5 : 0;
    if (!name)
        return 0;
    Py_ssize_t j = p + 1 + name;
    if (j < n && EDGE[s[j]]) /* \b: the name ends here (EDGE is the word bytes) */
        return 0;
    for (Py_ssize_t k = j; k <= j + MEDIA_REACH && k < n; k++) {
        if (s[k] == '<' || s[k] == '>')
            return 0;
        if (lower(s[k]) == 'c' && ieq(s, n, k, "crossorigin", 11))
            return 1;
    }
    return 0;
}

static PyObject *tag_starts(PyObject *Py_UNUSED(self), PyObject *args)
{
    Py_buffer view;
    Py_ssize_t start, limit;
    if (!PyArg_ParseTuple(args, "y*nn", &view, &start, &limit))
        return NULL;
    const unsigned char *s = view.buf;
    /* a hint starts before limit and its five bytes are all in buf */
    Py_ssize_t stop = limit < view.len - 4 ? limit : view.len - 4;
    PyObject *starts = PyList_New(0);
    for (Py_ssize_t p = start < 0 ? 0 : start; starts != NULL && p < stop; p++) {
        const unsigned char *lt = memchr(s + p, '<', (size_t)(stop - p));
        if (lt == NULL)
            break;
        p = lt - s;
        unsigned char next = HINT[s[p + 1]]; /* one look tells most tags apart */
        if ((next & 1) ? (HINT[s[p + 2]] & 2) && (HINT[s[p + 3]] & 4) && (HINT[s[p + 4]] & 8)
                       : (next & 16) && media_hint(s, view.len, p)) {
            PyObject *at = PyLong_FromSsize_t(p);
            if (at == NULL || PyList_Append(starts, at) < 0)
                Py_CLEAR(starts);
            Py_XDECREF(at);
        }
    }
    PyBuffer_Release(&view);
    return starts;
}

static PyMethodDef methods[] = {
    {"scan", scan, METH_VARARGS,
     "scan(buf, start, limit, memo, context_ends, attributes) -> (hits, maybe, unknown)."},
    {"splice", splice, METH_VARARGS,
     "splice(buf, start, stop, hits) -> buf[start:stop] with each hit's bytes replaced."},
    {"tag_starts", tag_starts, METH_VARARGS,
     "tag_starts(buf, start, limit) -> where TAG_HINT matches, starting in [start, limit)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, .m_name = "_urlscan", .m_size = -1, .m_methods = methods};

PyMODINIT_FUNC PyInit__urlscan(void)
{
    for (int c = 0; c < 256; c++) {
        int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        EDGE[c] = alnum || c == '_';
        LABEL[c] = EDGE[c] || c == '-';
        SCHEME[c] = alnum || c == '+' || c == '.' || c == '-';
        BARE[c] = alnum || c == '+' || c == '.' || c == ':' || c == ';' || c == '%' || c == '/'
            || c == '\\' || c == '_' || c == '-';
    }
    const char *classes[] = {"sSlLmM", "cCiIeE", "rRnNtT", "iIkKaA"};
    for (int k = 0; k < 4; k++)
        for (const char *c = classes[k]; *c; c++)
            HINT[(unsigned char)*c] |= 1 << k;
    for (const char *c = "iIvVaA"; *c; c++) /* the first letters of img, video, audio */
        HINT[(unsigned char)*c] |= 16;
    return PyModule_Create(&module);
}
