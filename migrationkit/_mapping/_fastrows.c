/* Rows straight from raw BSON for a mapping of columns, flattened objects and child
 * tables fed by top-level arrays (Normalizer.raw_plan says which mappings).
 *
 * The Python normalizer (normalize.py) decodes every document into dicts and lists,
 * then walks them again to write each nested value as the kit's lossless jsonb text
 * (types.py). For the default mapping that is most of a migration's client time. This
 * module reads the BSON bytes once and writes the same row: the same Python values in
 * the typed columns, the same jsonb text, the same catch-all.
 *
 * It handles only what it can write exactly as the Python path does; for anything
 * else (a type it does not know, a mismatch, a null a column refuses, an unusual key,
 * text that is not clean UTF-8) it answers None for that document, and the caller
 * normalizes it in Python. tests/unit/test_fast_rows.py checks that both agree.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <datetime.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

/* What happened to a document: written, or left to Python (not an error). */
#define DONE 0
#define FALLBACK 1
#define FAILED (-1) /* a Python exception is set */

#define MAX_DEPTH 100
#define MAX_KEYS 256

enum { CONV_PLAIN = 0, CONV_JSONB = 1, CONV_NUMERIC = 2, CONV_TEXT = 3, CONV_TIMESTAMPTZ = 4 };

static PyObject *Decimal; /* decimal.Decimal */
static PyObject *UTC;     /* datetime.timezone.utc */

/* -- a growing byte buffer ----------------------------------------------------------- */

typedef struct {
    char *data;
    Py_ssize_t size, capacity;
} Buf;

static int buf_reserve(Buf *b, Py_ssize_t more) {
    if (b->size + more <= b->capacity) return 0;
    Py_ssize_t capacity = b->capacity ? b->capacity : 1024;
    while (capacity < b->size + more) capacity *= 2;
    char *data = PyMem_Realloc(b->data, capacity);
    if (data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->data = data;
    b->capacity = capacity;
    return 0;
}

static int put(Buf *b, const char *text, Py_ssize_t size) {
    if (buf_reserve(b, size) < 0) return -1;
    memcpy(b->data + b->size, text, size);
    b->size += size;
    return 0;
}

#define PUT(b, literal) put((b), (literal), sizeof(literal) - 1)

/* -- reading BSON ---------------------------------------------------------------------- */

static int32_t read_i32(const uint8_t *p) {
    return (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                     (uint32_t)p[3] << 24);
}

static uint64_t read_u64(const uint8_t *p) {
    uint64_t value = 0;
    for (int i = 7; i >= 0; i--) value = value << 8 | p[i];
    return value;
}

/* The size of a value of BSON type ``type`` at p (before end); -1 for a type this
 * module does not write, or bytes that do not hold one. */
static Py_ssize_t value_size(uint8_t type, const uint8_t *p, const uint8_t *end) {
    Py_ssize_t left = end - p;
    int32_t size;
    switch (type) {
    case 0x01: case 0x09: case 0x12: return left >= 8 ? 8 : -1;
    case 0x07: return left >= 12 ? 12 : -1;
    case 0x08: return left >= 1 && p[0] <= 1 ? 1 : -1;
    case 0x0A: return 0;
    case 0x10: return left >= 4 ? 4 : -1;
    case 0x13: return left >= 16 ? 16 : -1;
    case 0x02:
        if (left < 5) return -1;
        size = read_i32(p);
        return size >= 1 && size <= left - 4 && p[4 + size - 1] == 0 ? 4 + size : -1;
    case 0x03: case 0x04:
        if (left < 5) return -1;
        size = read_i32(p);
        return size >= 5 && size <= left && p[size - 1] == 0 ? size : -1;
    default:
        return -1; /* binary, regex, code, timestamp, MinKey, MaxKey, deprecated types */
    }
}

/* One element of a document: its type, name and value. */
typedef struct {
    uint8_t type;
    const uint8_t *name;
    Py_ssize_t name_length;
    const uint8_t *value;
    Py_ssize_t size;
} Element;

/* Read the element at *p (before end) and move *p past it; 0 when the bytes do not
 * hold one of a type this module writes. */
static int next_element(const uint8_t **p, const uint8_t *end, Element *e) {
    e->type = *(*p)++;
    e->name = *p;
    const uint8_t *zero = memchr(*p, 0, end - *p);
    if (zero == NULL) return 0;
    e->name_length = zero - e->name;
    e->value = zero + 1;
    e->size = value_size(e->type, e->value, end);
    if (e->size < 0) return 0;
    *p = e->value + e->size;
    return 1;
}

/* Whether [doc, doc+length) is one whole BSON document: its size, then its end byte. */
static int whole_document(const uint8_t *doc, Py_ssize_t length) {
    return length >= 5 && read_i32(doc) == length && doc[length - 1] == 0;
}

/* Whether [p, p+n) is UTF-8 that Python's strict decoder takes (no surrogates, no
 * overlong forms, nothing past U+10FFFF) and holds no NUL. */
static int clean_utf8(const uint8_t *p, Py_ssize_t n) {
    const uint8_t *end = p + n;
    while (p < end) {
        uint8_t c = *p;
        if (c < 0x80) {
            if (c == 0) return 0;
            p++;
        } else if (c >= 0xC2 && c <= 0xDF) {
            if (end - p < 2 || (p[1] & 0xC0) != 0x80) return 0;
            p += 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            if (end - p < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80) return 0;
            if (c == 0xE0 && p[1] < 0xA0) return 0; /* overlong */
            if (c == 0xED && p[1] >= 0xA0) return 0; /* a surrogate */
            p += 3;
        } else if (c >= 0xF0 && c <= 0xF4) {
            if (end - p < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 ||
                (p[3] & 0xC0) != 0x80)
                return 0;
            if (c == 0xF0 && p[1] < 0x90) return 0;  /* overlong */
            if (c == 0xF4 && p[1] >= 0x90) return 0; /* past U+10FFFF */
            p += 4;
        } else {
            return 0;
        }
    }
    return 1;
}

/* -- writing the kit's jsonb text (types.py: _item_text and friends) -------------------- */

static const char HEX[] = "0123456789abcdef";

/* A clean UTF-8 string as json writes it with ensure_ascii=False. */
static int put_quoted(Buf *b, const uint8_t *p, Py_ssize_t n) {
    if (buf_reserve(b, n * 6 + 2) < 0) return -1;
    char *out = b->data + b->size;
    *out++ = '"';
    for (Py_ssize_t i = 0; i < n; i++) {
        uint8_t c = p[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            *out++ = (char)c;
            continue;
        }
        *out++ = '\\';
        switch (c) {
        case '"': *out++ = '"'; break;
        case '\\': *out++ = '\\'; break;
        case '\n': *out++ = 'n'; break;
        case '\r': *out++ = 'r'; break;
        case '\t': *out++ = 't'; break;
        case '\b': *out++ = 'b'; break;
        case '\f': *out++ = 'f'; break;
        default:
            *out++ = 'u';
            *out++ = '0';
            *out++ = '0';
            *out++ = HEX[c >> 4];
            *out++ = HEX[c & 15];
        }
    }
    *out++ = '"';
    b->size = out - b->data;
    return 0;
}

static int put_hex(Buf *b, const uint8_t *p, Py_ssize_t n) {
    if (buf_reserve(b, 2 * n) < 0) return -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        b->data[b->size++] = HEX[p[i] >> 4];
        b->data[b->size++] = HEX[p[i] & 15];
    }
    return 0;
}

static int put_format(Buf *b, const char *format, long long value) {
    char text[64];
    int n = snprintf(text, sizeof text, format, value);
    return put(b, text, n);
}

/* A double as _float_text writes it: repr, wrapped when repr is not plain JSON. */
static int double_text(Buf *b, double value) {
    if (isnan(value)) return FALLBACK; /* NaN's sign and payload: left to Python */
    char *text = PyOS_double_to_string(value, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
    if (text == NULL) return FAILED;
    int status = 0;
    if (strchr(text, 'e') || strchr(text, 'n') || strcmp(text, "-0.0") == 0) {
        const char *name = strcmp(text, "inf") == 0    ? "Infinity"
                           : strcmp(text, "-inf") == 0 ? "-Infinity"
                                                       : text;
        status = PUT(b, "{\"$numberDouble\":\"") < 0 || put(b, name, strlen(name)) < 0 ||
                 PUT(b, "\"}") < 0;
    } else {
        status = put(b, text, strlen(text)) < 0;
    }
    PyMem_Free(text);
    return status ? FAILED : DONE;
}

/* decimal_text() of types.py: the exact text of a Decimal128, into text (>= 64 bytes). */
static int decimal_text(const uint8_t *p, char *text) {
    uint64_t low = read_u64(p), high = read_u64(p + 8);
    char *out = text;
    if (high >> 63) *out++ = '-';
    if ((high & (0x7CULL << 56)) == (0x7CULL << 56)) {
        strcpy(out, (high & (0x7EULL << 56)) == (0x7EULL << 56) ? "sNaN" : "NaN");
        return DONE;
    }
    if ((high & (0x78ULL << 56)) == (0x78ULL << 56)) {
        strcpy(out, "Infinity");
        return DONE;
    }
    if ((high & (0x60ULL << 56)) == (0x60ULL << 56)) return FALLBACK; /* a zero, rarely */
    int exponent = (int)((high >> 49) & 0x3FFF) - 6176;
    char reversed[48];
    int n = 0;
#ifdef __SIZEOF_INT128__
    unsigned __int128 coefficient = ((unsigned __int128)(high & 0x1FFFFFFFFFFFFULL) << 64) | low;
    do {
        reversed[n++] = (char)('0' + (int)(coefficient % 10));
        coefficient /= 10;
    } while (coefficient);
#else /* no 128-bit integers (MSVC, 32-bit): only coefficients that fit 64 bits */
    if (high & 0x1FFFFFFFFFFFFULL) return FALLBACK;
    uint64_t coefficient = low;
    do {
        reversed[n++] = (char)('0' + (int)(coefficient % 10));
        coefficient /= 10;
    } while (coefficient);
#endif
    char digits[48];
    for (int i = 0; i < n; i++) digits[i] = reversed[n - 1 - i];
    digits[n] = 0;
    int adjusted = exponent + n - 1;
    if (exponent <= 0 && adjusted >= -6) {
        if (exponent == 0) {
            strcpy(out, digits);
        } else if (n > -exponent) {
            int whole = n + exponent;
            memcpy(out, digits, whole);
            out[whole] = '.';
            strcpy(out + whole + 1, digits + whole);
        } else {
            *out++ = '0';
            *out++ = '.';
            for (int i = 0; i < -exponent - n; i++) *out++ = '0';
            strcpy(out, digits);
        }
        return DONE;
    }
    *out++ = digits[0];
    if (n > 1) {
        *out++ = '.';
        memcpy(out, digits + 1, n - 1);
        out += n - 1;
    }
    sprintf(out, "E%s%d", adjusted >= 0 ? "+" : "", adjusted);
    return DONE;
}

/* Days since 1970-01-01 to a civil date (H. Hinnant's algorithm). */
static void civil_from_days(long long days, long long *year, int *month, int *day) {
    days += 719468;
    long long era = (days >= 0 ? days : days - 146096) / 146097;
    long long doe = days - era * 146097;
    long long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    long long mp = (5 * doy + 2) / 153;
    *day = (int)(doy - (153 * mp + 2) / 5 + 1);
    *month = (int)(mp < 10 ? mp + 3 : mp - 9);
    *year = yoe + era * 400 + (*month <= 2);
}

/* Python's datetime range in ms since 1970 (years 1 to 9999): DATETIME_AUTO's bounds. */
#define MIN_MS (-62135596800000LL)
#define MAX_MS (253402300799999LL)

typedef struct {
    long long year;
    int month, day, hour, minute, second, millisecond;
} Moment;

static Moment moment_of(long long ms) {
    long long days = ms >= 0 ? ms / 86400000 : -((-ms + 86399999) / 86400000);
    long long rest = ms - days * 86400000;
    Moment m;
    civil_from_days(days, &m.year, &m.month, &m.day);
    m.hour = (int)(rest / 3600000);
    m.minute = (int)(rest / 60000 % 60);
    m.second = (int)(rest / 1000 % 60);
    m.millisecond = (int)(rest % 1000);
    return m;
}

/* The aware datetime (UTC) of a BSON date for a timestamptz; NULL, with no exception
 * set, outside Python's range and at year one's midnight (asyncpg's -infinity). */
static PyObject *datetime_of(long long ms) {
    if (ms <= MIN_MS || ms > MAX_MS) return NULL;
    Moment m = moment_of(ms);
    return PyDateTimeAPI->DateTime_FromDateAndTime((int)m.year, m.month, m.day, m.hour,
                                                   m.minute, m.second, m.millisecond * 1000,
                                                   UTC, PyDateTimeAPI->DateTimeType);
}

static int value_text(Buf *b, uint8_t type, const uint8_t *p, Py_ssize_t size, int depth);

typedef struct {
    const uint8_t *name;
    Py_ssize_t length;
} Key;

/* Whether jsonb keeps these keys in this order: by UTF-8 length, then bytewise. */
static int keys_in_order(const Key *keys, int n) {
    for (int i = 0; i + 1 < n; i++) {
        const Key *a = &keys[i], *c = &keys[i + 1];
        if (a->length != c->length) {
            if (a->length > c->length) return 0;
            continue;
        }
        if (memcmp(a->name, c->name, a->length) >= 0) return 0;
    }
    return 1;
}

static int has_duplicate(const Key *keys, int n) {
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (keys[i].length == keys[j].length &&
                memcmp(keys[i].name, keys[j].name, keys[i].length) == 0)
                return 1;
    return 0;
}

/* Keys written as they are: clean UTF-8, not starting with '$' (those are escaped). */
static int plain_key(const uint8_t *name, Py_ssize_t length) {
    return (length == 0 || name[0] != '$') && clean_utf8(name, length);
}

/* The ``$keys`` list and close of an object whose keys jsonb would reorder. */
static int put_close(Buf *b, const Key *keys, int n) {
    if (keys_in_order(keys, n)) return PUT(b, "}") < 0 ? FAILED : DONE;
    if (PUT(b, ",\"$keys\":[") < 0) return FAILED;
    for (int i = 0; i < n; i++) {
        if ((i && PUT(b, ",") < 0) || put_quoted(b, keys[i].name, keys[i].length) < 0)
            return FAILED;
    }
    return PUT(b, "]}") < 0 ? FAILED : DONE;
}

/* An embedded document (array = 0) or array (1) as _object_text / _array_text write it. */
static int container_text(Buf *b, const uint8_t *doc, Py_ssize_t size, int array, int depth) {
    if (depth > MAX_DEPTH) return FALLBACK;
    const uint8_t *p = doc + 4, *end = doc + size - 1;
    Key keys[MAX_KEYS];
    int n = 0, status;
    if (put(b, array ? "[" : "{", 1) < 0) return FAILED;
    Element e;
    while (p < end) {
        if (!next_element(&p, end, &e)) return FALLBACK;
        if (n && PUT(b, ",") < 0) return FAILED;
        if (!array) {
            if (n == MAX_KEYS || !plain_key(e.name, e.name_length)) return FALLBACK;
            keys[n] = (Key){e.name, e.name_length};
            if (put_quoted(b, e.name, e.name_length) < 0 || PUT(b, ":") < 0) return FAILED;
        }
        n++;
        if ((status = value_text(b, e.type, e.value, e.size, depth + 1)) != DONE) return status;
    }
    if (array) return PUT(b, "]") < 0 ? FAILED : DONE;
    if (n == 0) return PUT(b, "}") < 0 ? FAILED : DONE;
    if (has_duplicate(keys, n)) return FALLBACK; /* a dict keeps one: left to Python */
    return put_close(b, keys, n);
}

static int value_text(Buf *b, uint8_t type, const uint8_t *p, Py_ssize_t size, int depth) {
    char text[80];
    double number;
    switch (type) {
    case 0x01:
        memcpy(&number, p, 8);
        return double_text(b, number);
    case 0x02:
        if (!clean_utf8(p + 4, size - 5)) return FALLBACK; /* NUL, bad UTF-8: $escaped */
        return put_quoted(b, p + 4, size - 5) < 0 ? FAILED : DONE;
    case 0x03: case 0x04:
        return container_text(b, p, size, type == 0x04, depth);
    case 0x07:
        return PUT(b, "{\"$oid\":\"") < 0 || put_hex(b, p, 12) < 0 || PUT(b, "\"}") < 0 ? FAILED
                                                                                     : DONE;
    case 0x08:
        return (p[0] ? PUT(b, "true") : PUT(b, "false")) < 0 ? FAILED : DONE;
    case 0x09: {
        long long ms = (long long)read_u64(p);
        if (ms < MIN_MS || ms > MAX_MS)
            return put_format(b, "{\"$date\":{\"$numberLong\":\"%lld\"}}", ms) < 0 ? FAILED : DONE;
        Moment m = moment_of(ms);
        int n = snprintf(text, sizeof text,
                         "{\"$date\":\"%04lld-%02d-%02dT%02d:%02d:%02d.%03dZ\"}", m.year,
                         m.month, m.day, m.hour, m.minute, m.second, m.millisecond);
        return put(b, text, n) < 0 ? FAILED : DONE;
    }
    case 0x0A:
        return PUT(b, "null") < 0 ? FAILED : DONE;
    case 0x10:
        return put_format(b, "%lld", read_i32(p)) < 0 ? FAILED : DONE;
    case 0x12:
        return put_format(b, "{\"$numberLong\":\"%lld\"}", (long long)read_u64(p)) < 0 ? FAILED
                                                                                       : DONE;
    case 0x13: {
        if (decimal_text(p, text) != DONE) return FALLBACK;
        return PUT(b, "{\"$numberDecimal\":\"") < 0 || put(b, text, strlen(text)) < 0 ||
                       PUT(b, "\"}") < 0
                   ? FAILED
                   : DONE;
    }
    default:
        return FALLBACK;
    }
}

/* -- one document's row ------------------------------------------------------------------ */

typedef struct Level Level;

/* A flattened object (its fields are columns too) under a level: its name, its level. */
typedef struct {
    const char *name;
    Py_ssize_t length;
    Level *level;
} Named;

/* One object level: its fields' columns, and the objects under it that are flattened. */
struct Level {
    PyObject *columns; /* dict: field name -> (index, accepted types mask, takes_null, conv) */
    int catch_all;
    int n_objects;
    Named *objects;
};

typedef struct Plan Plan;

/* A top-level array written to a child table: its field's name, and the child's plan. */
typedef struct {
    const char *name;
    Py_ssize_t length;
    Plan *plan;
} ChildPlan;

/* One table's rows: the document's (or an array element's) levels and row shape. */
struct Plan {
    Level top;
    Py_ssize_t width;
    PyObject *required; /* tuple of column indexes that may not be NULL */
    int element;        /* 1: an array element's row (its _id is a plain field; no key) */
    PyObject *scalar;   /* an element's: the column of scalar elements, or NULL */
    int n_children;     /* the document's only: the arrays that become child tables */
    ChildPlan *children;
};

#define MAX_CHILDREN 32
#define MAX_OBJECTS 64

static PyObject *text_of(Buf *b) { return PyUnicode_DecodeUTF8(b->data, b->size, NULL); }

/* A typed column's value (or jsonb text); NULL with no exception set: fall back. */
static PyObject *column_value(int conv, uint8_t type, const uint8_t *p, Py_ssize_t size,
                              Buf *scratch) {
    char text[80];
    double number;
    switch (conv) {
    case CONV_PLAIN:
        switch (type) {
        case 0x01: memcpy(&number, p, 8); return PyFloat_FromDouble(number);
        case 0x08: return PyBool_FromLong(p[0]);
        case 0x10: return PyLong_FromLong(read_i32(p));
        case 0x12: return PyLong_FromLongLong((long long)read_u64(p));
        }
        return NULL;
    case CONV_JSONB: {
        scratch->size = 0;
        int status = value_text(scratch, type, p, size, 1);
        return status == DONE ? text_of(scratch) : NULL;
    }
    case CONV_NUMERIC: {
        if (type == 0x10 || type == 0x12) {
            PyObject *integer = PyLong_FromLongLong(
                type == 0x10 ? (long long)read_i32(p) : (long long)read_u64(p));
            if (integer == NULL) return NULL;
            PyObject *result = PyObject_CallOneArg(Decimal, integer);
            Py_DECREF(integer);
            return result;
        }
        if (type != 0x13 || decimal_text(p, text) != DONE) return NULL;
        /* NaN, infinities and signed zeros take the Python path (and its reasons). */
        if (strchr(text, 'N') || strchr(text, 'I')) return NULL;
        if (text[0] == '-') {
            uint64_t low = read_u64(p), high = read_u64(p + 8) & 0x1FFFFFFFFFFFFULL;
            if (low == 0 && high == 0) return NULL;
        }
        return PyObject_CallFunction(Decimal, "s", text);
    }
    case CONV_TEXT:
        if (type == 0x07) {
            scratch->size = 0;
            return put_hex(scratch, p, 12) < 0 ? NULL : text_of(scratch);
        }
        if (type != 0x02 || !clean_utf8(p + 4, size - 5)) return NULL;
        return PyUnicode_DecodeUTF8((const char *)p + 4, size - 5, NULL);
    case CONV_TIMESTAMPTZ:
        return type == 0x09 ? datetime_of((long long)read_u64(p)) : NULL;
    }
    return NULL;
}

/* mongo_key(_id) for an ObjectId, an int32 or plain ASCII text; NULL otherwise. */
static PyObject *key_of(uint8_t type, const uint8_t *p, Py_ssize_t size, Buf *scratch) {
    scratch->size = 0;
    if (type == 0x07) return put_hex(scratch, p, 12) < 0 ? NULL : text_of(scratch);
    if (type == 0x10) return PyUnicode_FromFormat("%d", (int)read_i32(p));
    if (type == 0x02) {
        for (Py_ssize_t i = 4; i < size - 1; i++)
            if (p[i] < 0x20 || p[i] >= 0x7F || p[i] == '"' || p[i] == '\\') return NULL;
        return put_quoted(scratch, p + 4, size - 5) < 0 ? NULL : text_of(scratch);
    }
    return NULL;
}

typedef struct {
    const uint8_t *name;
    Py_ssize_t length;
    uint8_t type;
    const uint8_t *value; /* NULL: ``text`` holds the value's jsonb text already */
    Py_ssize_t size;
    Py_ssize_t order; /* Python's insertion order (see fill_level) */
    const Buf *text;
} Extra;

static int extra_order(const void *a, const void *c) {
    Py_ssize_t x = ((const Extra *)a)->order, y = ((const Extra *)c)->order;
    return x < y ? -1 : x > y;
}

/* A level's catch-all object as jsonb text into ``out``, in Python's insertion order. */
static int extras_text(Buf *out, Extra *extras, int n) {
    Key keys[MAX_KEYS];
    qsort(extras, n, sizeof(Extra), extra_order); /* the orders are distinct */
    for (int i = 0; i < n; i++) {
        keys[i] = (Key){extras[i].name, extras[i].length};
        if (put(out, i ? "," : "{", 1) < 0 ||
            put_quoted(out, extras[i].name, extras[i].length) < 0 || PUT(out, ":") < 0)
            return FAILED;
        if (extras[i].value == NULL) {
            if (put(out, extras[i].text->data, extras[i].text->size) < 0) return FAILED;
            continue;
        }
        int status = value_text(out, extras[i].type, extras[i].value, extras[i].size, 1);
        if (status != DONE) return status;
    }
    if (n == 0) return PUT(out, "{}") < 0 ? FAILED : DONE;
    return put_close(out, keys, n);
}

static int object_index(const Level *level, const uint8_t *name, Py_ssize_t length) {
    for (int i = 0; i < level->n_objects; i++)
        if (level->objects[i].length == length &&
            memcmp(level->objects[i].name, name, length) == 0)
            return i;
    return -1;
}

static int child_index(const Plan *plan, const uint8_t *name, Py_ssize_t length) {
    for (int i = 0; i < plan->n_children; i++)
        if (plan->children[i].length == length &&
            memcmp(plan->children[i].name, name, length) == 0)
            return i;
    return -1;
}

/* A column as Python passes it: (index, accepted types mask, takes_null, conv). */
typedef struct {
    Py_ssize_t index;
    long mask;
    int takes_null, conv;
} ColumnSpec;

static ColumnSpec column_spec(PyObject *entry) {
    return (ColumnSpec){PyLong_AsSsize_t(PyTuple_GET_ITEM(entry, 0)),
                        PyLong_AsLong(PyTuple_GET_ITEM(entry, 1)),
                        PyObject_IsTrue(PyTuple_GET_ITEM(entry, 2)),
                        (int)PyLong_AsLong(PyTuple_GET_ITEM(entry, 3))};
}

/* Whether every column the row may not leave NULL has a value. */
static int required_present(const Plan *plan, PyObject *const *values) {
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(plan->required); i++)
        if (values[PyLong_AsSsize_t(PyTuple_GET_ITEM(plan->required, i))] == NULL) return 0;
    return 1;
}

/* One object level's fields into values[]; what it leaves for the catch-all, as jsonb
 * text, into ``kept`` (left empty when nothing is left). DONE, FALLBACK or FAILED.
 *
 * At the document's level, _id becomes values[0] and each child table's array is noted
 * in arrays[] (NULL: absent or empty). Python's catch-all keeps its keys in this order:
 * the nulls of columns (by column), the flattened objects, the empty child arrays, the
 * unnamed fields as they come; each Extra's ``order`` says which. */
static int fill_level(const Plan *plan, const Level *level, const uint8_t *doc,
                      Py_ssize_t length, PyObject **values, const uint8_t **arrays,
                      Buf *kept, Buf *scratch, int depth) {
    if (depth > MAX_DEPTH || !whole_document(doc, length)) return FALLBACK;
    int top = arrays != NULL;
    Key names[MAX_KEYS];
    Extra extras[MAX_KEYS];
    Buf inner[MAX_OBJECTS];
    int n = 0, unnamed = 0, status = DONE;
    for (int i = 0; i < level->n_objects; i++) inner[i] = (Buf){NULL, 0, -1}; /* -1: absent */
    Py_ssize_t after_objects = plan->width + level->n_objects;
    Py_ssize_t next_unnamed = after_objects + (top ? plan->n_children : 0);
    const uint8_t *p = doc + 4, *end = doc + length - 1;
    Element e;
    while (p < end) {
        if (n == MAX_KEYS || !next_element(&p, end, &e)) goto fall_back;
        uint8_t type = e.type;
        const uint8_t *name = e.name, *value = e.value;
        Py_ssize_t name_length = e.name_length, size = e.size;
        if (!plain_key(name, name_length)) goto fall_back;
        names[n++] = (Key){name, name_length};
        if (top && !plan->element && name_length == 3 && memcmp(name, "_id", 3) == 0) {
            if (values[0] != NULL || (values[0] = key_of(type, value, size, scratch)) == NULL)
                goto stop;
            continue;
        }
        PyObject *field = PyUnicode_DecodeUTF8((const char *)name, name_length, NULL);
        if (field == NULL) goto failed;
        PyObject *entry = PyDict_GetItemWithError(level->columns, field);
        Py_DECREF(field);
        if (entry == NULL) {
            if (PyErr_Occurred()) goto failed;
            int object = object_index(level, name, name_length);
            if (object >= 0) {
                if (inner[object].capacity != -1) goto fall_back; /* twice: a duplicate */
                inner[object].capacity = 0;
                Py_ssize_t order = plan->width + object;
                if (type == 0x0A) { /* a null object stays null in the catch-all */
                    if (level->catch_all)
                        extras[unnamed++] = (Extra){name, name_length, type, value, size, order,
                                                    NULL};
                    continue;
                }
                if (type != 0x03) goto fall_back; /* not an object: Python's rules */
                status = fill_level(plan, level->objects[object].level, value, size, values,
                                    NULL, &inner[object], scratch, depth + 1);
                if (status != DONE) goto stop;
                if (inner[object].size == 0 && size == 5 && level->catch_all)
                    status = PUT(&inner[object], "{}") < 0 ? FAILED : DONE; /* kept empty */
                if (status != DONE) goto stop;
                if (inner[object].size)
                    extras[unnamed++] = (Extra){name, name_length, type, NULL, 0, order,
                                                &inner[object]};
                continue;
            }
            int child = top ? child_index(plan, name, name_length) : -1;
            if (child >= 0) {
                if (type != 0x04) goto fall_back; /* null, or not an array: Python's rules */
                if (size > 5) arrays[child] = value;
                else if (level->catch_all) /* an empty array stays in the catch-all */
                    extras[unnamed++] = (Extra){name, name_length, type, value, size,
                                                after_objects + child, NULL};
                continue;
            }
            if (!level->catch_all) goto fall_back; /* dropped, and named in the report */
            extras[unnamed++] =
                (Extra){name, name_length, type, value, size, next_unnamed++, NULL};
            continue;
        }
        ColumnSpec column = column_spec(entry);
        if (type == 0x0A) {
            if (!column.takes_null) goto fall_back;
            if (level->catch_all) /* recorded, so that null and missing stay distinct */
                extras[unnamed++] =
                    (Extra){name, name_length, type, value, size, column.index, NULL};
            continue;
        }
        if (!(column.mask & (1L << type)) || values[column.index] != NULL) goto fall_back;
        values[column.index] = column_value(column.conv, type, value, size, scratch);
        if (values[column.index] == NULL) goto stop;
    }
    if (has_duplicate(names, n)) goto fall_back;
    if (unnamed) status = extras_text(kept, extras, unnamed);
    goto done;
stop: /* a NULL from a Python call: an error if one is set, else fall back */
    status = PyErr_Occurred() ? FAILED : FALLBACK;
    goto done;
fall_back:
    status = FALLBACK;
    goto done;
failed:
    status = FAILED;
done:
    for (int i = 0; i < level->n_objects; i++) PyMem_Free(inner[i].data);
    return status;
}

/* One row (the document's, or an element's) into values[]: DONE, FALLBACK or FAILED. */
static int fill_row(const Plan *plan, const uint8_t *doc, Py_ssize_t length, PyObject **values,
                    const uint8_t **arrays, Buf *scratch) {
    Buf kept = {NULL, 0, 0};
    int status = fill_level(plan, &plan->top, doc, length, values,
                            plan->element ? NULL : arrays, &kept, scratch, 0);
    if (status == DONE && values[0] == NULL) status = FALLBACK; /* no _id */
    if (status == DONE && !required_present(plan, values))
        status = FALLBACK; /* rejected, with Python's reason */
    if (status == DONE && plan->top.catch_all) {
        /* An empty element keeps "{}" (it differs from an element of nulls). */
        if (kept.size == 0 && plan->element && length == 5)
            status = PUT(&kept, "{}") < 0 ? FAILED : DONE;
        if (status == DONE && kept.size &&
            (values[plan->width - 1] = text_of(&kept)) == NULL)
            status = FAILED;
    }
    PyMem_Free(kept.data);
    return status;
}

/* values[0..width) as a tuple (NULL: None), taking their references; NULL on an error. */
static PyObject *row_of(PyObject **values, Py_ssize_t width) {
    PyObject *row = PyTuple_New(width);
    if (row == NULL) return NULL;
    for (Py_ssize_t i = 0; i < width; i++) {
        PyTuple_SET_ITEM(row, i, values[i] ? values[i] : Py_NewRef(Py_None));
        values[i] = NULL;
    }
    return row;
}

static void clear_values(PyObject **values, Py_ssize_t width) {
    for (Py_ssize_t i = 0; i < width; i++) Py_CLEAR(values[i]);
}

/* A scalar element's row into values[] (its key and position are there). */
static int scalar_row(const Plan *plan, const Element *e, PyObject **values, Buf *scratch) {
    if (plan->scalar == NULL) return FALLBACK; /* kept in the catch-all, or dropped */
    ColumnSpec column = column_spec(plan->scalar);
    if (e->type == 0x0A) {
        if (!column.takes_null) return FALLBACK;
        /* recorded, so that a null element and a missing value stay distinct */
        if (plan->top.catch_all && (values[plan->width - 1] = PyUnicode_FromString("null")) == NULL)
            return FAILED;
    } else {
        if (!(column.mask & (1L << e->type))) return FALLBACK;
        values[column.index] = column_value(column.conv, e->type, e->value, e->size, scratch);
        if (values[column.index] == NULL) return PyErr_Occurred() ? FAILED : FALLBACK;
    }
    return required_present(plan, values) ? DONE : FALLBACK; /* else Python rejects it */
}

/* The rows of one array's elements, appended to ``rows``: DONE, FALLBACK or FAILED. */
static int element_rows(const Plan *plan, PyObject *key, const uint8_t *array, PyObject *rows,
                        Buf *scratch) {
    Py_ssize_t length = read_i32(array);
    if (!whole_document(array, length)) return FALLBACK;
    PyObject **values = PyMem_Calloc(plan->width, sizeof(PyObject *));
    if (values == NULL) {
        PyErr_NoMemory();
        return FAILED;
    }
    const uint8_t *p = array + 4, *end = array + length - 1;
    Element e;
    int status = DONE;
    for (long position = 0; p < end; position++) {
        if (!next_element(&p, end, &e)) {
            status = FALLBACK;
            break;
        }
        values[0] = Py_NewRef(key);
        if ((values[1] = PyLong_FromLong(position)) == NULL) {
            status = FAILED;
            break;
        }
        status = e.type == 0x03 ? fill_row(plan, e.value, e.size, values, NULL, scratch)
                                : scalar_row(plan, &e, values, scratch);
        if (status != DONE) break;
        PyObject *row = row_of(values, plan->width);
        if (row == NULL || PyList_Append(rows, row) < 0) {
            Py_XDECREF(row);
            status = FAILED;
            break;
        }
        Py_DECREF(row);
    }
    clear_values(values, plan->width);
    PyMem_Free(values);
    return status;
}

/* One document: its row tuple, or with child tables (row, (rows of each child table)),
 * Py_None to leave it to Python, NULL on an error. */
static PyObject *document_row(const Plan *plan, const uint8_t *doc, Py_ssize_t length,
                              Buf *scratch) {
    const uint8_t *arrays[MAX_CHILDREN] = {NULL};
    PyObject *row = NULL, *children = NULL;
    PyObject **values = PyMem_Calloc(plan->width, sizeof(PyObject *));
    if (values == NULL) return PyErr_NoMemory();
    int status = fill_row(plan, doc, length, values, arrays, scratch);
    if (status == DONE && plan->n_children) {
        if ((children = PyTuple_New(plan->n_children)) == NULL) status = FAILED;
        for (int c = 0; status == DONE && c < plan->n_children; c++) {
            PyObject *rows = PyList_New(0);
            if (rows == NULL) {
                status = FAILED;
                break;
            }
            PyTuple_SET_ITEM(children, c, rows);
            if (arrays[c] != NULL)
                status = element_rows(plan->children[c].plan, values[0], arrays[c], rows, scratch);
        }
    }
    if (status == DONE) row = row_of(values, plan->width);
    clear_values(values, plan->width);
    PyMem_Free(values);
    if (status != DONE || row == NULL) {
        Py_XDECREF(children);
        if (status == FALLBACK) Py_RETURN_NONE;
        return NULL;
    }
    if (children == NULL) return row;
    PyObject *pair = PyTuple_Pack(2, row, children);
    Py_DECREF(row);
    Py_DECREF(children);
    return pair;
}

/* -- the users table (rows.py: document_to_row, users_rows) ------------------------------ */

/* Text as the users rules take it: a string of 1 to 254 characters, clean UTF-8. */
static int user_text(uint8_t type, const uint8_t *p, Py_ssize_t size) {
    if (type != 0x02 || !clean_utf8(p + 4, size - 5)) return 0;
    Py_ssize_t characters = 0;
    for (Py_ssize_t i = 4; i < size - 1; i++) characters += (p[i] & 0xC0) != 0x80;
    return characters >= 1 && characters <= 254;
}

/* _is_email: something before the first '@', a '.' after it, no space anywhere. */
static int user_email(const uint8_t *p, Py_ssize_t size) {
    const uint8_t *text = p + 4, *end = p + size - 1;
    const uint8_t *at = memchr(text, '@', end - text);
    if (at == NULL || at == text || memchr(text, ' ', end - text) != NULL) return 0;
    return memchr(at + 1, '.', end - at - 1) != NULL;
}

/* One users document: (key, username, email, age, registered_at), or Py_None when the
 * users rules might say anything else (a rejection, an extra field, a coercion). */
static PyObject *user_row(const uint8_t *doc, Py_ssize_t length, Buf *scratch) {
    if (!whole_document(doc, length)) Py_RETURN_NONE;
    PyObject *values[5] = {NULL, NULL, NULL, NULL, NULL};
    int registered_seen = 0;
    const uint8_t *p = doc + 4, *end = doc + length - 1;
    Element e;
    while (p < end) {
        if (!next_element(&p, end, &e)) goto fall_back;
        uint8_t type = e.type;
        const uint8_t *name = e.name, *value = e.value;
        Py_ssize_t name_length = e.name_length, size = e.size;
#define NAMED(literal) \
    (name_length == sizeof(literal) - 1 && memcmp(name, literal, sizeof(literal) - 1) == 0)
        int slot = NAMED("_id") ? 0 : NAMED("username") ? 1 : NAMED("email") ? 2
                 : NAMED("age") ? 3 : NAMED("registered_at") ? 4 : -1;
#undef NAMED
        if (slot < 0 || values[slot] != NULL || (slot == 4 && registered_seen))
            goto fall_back; /* an extra field (named in the report) or a duplicate */
        if (slot == 0) {
            values[0] = key_of(type, value, size, scratch);
        } else if (slot == 1 || slot == 2) {
            if (!user_text(type, value, size) || (slot == 2 && !user_email(value, size)))
                goto fall_back;
            values[slot] = PyUnicode_DecodeUTF8((const char *)value + 4, size - 5, NULL);
        } else if (slot == 3) {
            double number;
            if (type == 0x10) {
                int32_t age = read_i32(value);
                if (age < 0 || age > 150) goto fall_back;
                values[3] = PyLong_FromLong(age);
            } else if (type == 0x01) { /* a whole double, as shells write numbers */
                memcpy(&number, value, 8);
                if (!(number >= 0 && number <= 150 && number == floor(number))) goto fall_back;
                values[3] = PyLong_FromLong((long)number);
            } else {
                goto fall_back;
            }
        } else {
            registered_seen = 1;
            if (type == 0x0A) continue; /* null: no date */
            if (type != 0x09) goto fall_back;
            values[4] = datetime_of((long long)read_u64(value));
        }
        if (values[slot] == NULL) {
            if (PyErr_Occurred()) goto failed;
            goto fall_back;
        }
    }
    if (values[0] == NULL || values[1] == NULL || values[2] == NULL || values[3] == NULL)
        goto fall_back; /* missing: rejected, with the users rules' reason */
    PyObject *row = PyTuple_New(5);
    if (row == NULL) goto failed;
    for (int i = 0; i < 5; i++) PyTuple_SET_ITEM(row, i, values[i] ? values[i] : Py_NewRef(Py_None));
    return row;

fall_back:
    for (int i = 0; i < 5; i++) Py_XDECREF(values[i]);
    Py_RETURN_NONE;
failed:
    for (int i = 0; i < 5; i++) Py_XDECREF(values[i]);
    return NULL;
}

/* The rows of a batch, one per document: ``make`` returns a tuple, None or NULL. */
typedef PyObject *(*RowMaker)(const void *context, const uint8_t *doc, Py_ssize_t length,
                              Buf *scratch);

static PyObject *each_row(PyObject *documents, RowMaker make, const void *context) {
    PyObject *sequence = PySequence_Fast(documents, "documents must be a sequence of bytes");
    if (sequence == NULL) return NULL;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(sequence);
    PyObject *out = PyList_New(count);
    Buf scratch = {NULL, 0, 0};
    for (Py_ssize_t i = 0; out != NULL && i < count; i++) {
        PyObject *document = PySequence_Fast_GET_ITEM(sequence, i);
        PyObject *row = !PyBytes_Check(document)
                            ? Py_NewRef(Py_None)
                            : make(context, (const uint8_t *)PyBytes_AS_STRING(document),
                                   PyBytes_GET_SIZE(document), &scratch);
        if (row == NULL) {
            Py_CLEAR(out);
            break;
        }
        PyList_SET_ITEM(out, i, row);
    }
    PyMem_Free(scratch.data);
    Py_DECREF(sequence);
    return out;
}

static PyObject *make_mapped(const void *context, const uint8_t *doc, Py_ssize_t length,
                             Buf *scratch) {
    return document_row((const Plan *)context, doc, length, scratch);
}

static PyObject *make_user(const void *context, const uint8_t *doc, Py_ssize_t length,
                           Buf *scratch) {
    (void)context;
    return user_row(doc, length, scratch);
}

/* users(documents) -> [row tuple or None, ...] */
static PyObject *users(PyObject *Py_UNUSED(module), PyObject *documents) {
    return each_row(documents, make_user, NULL);
}

/* A level from (columns, catch_all, ((name, level), ...)); 0 with an error set. The
 * objects' levels are allocated: free_level() frees them. */
static int level_of(PyObject *spec, Level *level, int depth) {
    PyObject *objects;
    level->n_objects = 0;
    level->objects = NULL;
    if (depth > MAX_DEPTH) {
        PyErr_SetString(PyExc_ValueError, "flattened objects nest too deep for the C path");
        return 0;
    }
    if (!PyArg_ParseTuple(spec, "O!pO!", &PyDict_Type, &level->columns, &level->catch_all,
                          &PyTuple_Type, &objects))
        return 0;
    Py_ssize_t n = PyTuple_GET_SIZE(objects);
    if (n > MAX_OBJECTS) {
        PyErr_SetString(PyExc_ValueError, "too many flattened objects for the C path");
        return 0;
    }
    if (n == 0) return 1;
    level->objects = PyMem_Calloc(n, sizeof(Named));
    if (level->objects == NULL) {
        PyErr_NoMemory();
        return 0;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        Named *named = &level->objects[i];
        PyObject *name, *inner;
        if (!PyArg_ParseTuple(PyTuple_GET_ITEM(objects, i), "UO!", &name, &PyTuple_Type, &inner))
            return 0;
        if ((named->name = PyUnicode_AsUTF8AndSize(name, &named->length)) == NULL) return 0;
        if ((named->level = PyMem_Calloc(1, sizeof(Level))) == NULL) {
            PyErr_NoMemory();
            return 0;
        }
        level->n_objects = (int)i + 1; /* freed from here on, even if parsing fails */
        if (!level_of(inner, named->level, depth + 1)) return 0;
    }
    return 1;
}

static void free_level(Level *level) {
    for (int i = 0; i < level->n_objects; i++) {
        if (level->objects[i].level != NULL) free_level(level->objects[i].level);
        PyMem_Free(level->objects[i].level);
    }
    PyMem_Free(level->objects);
}

/* rows(level, width, required, children, documents) -> [row or None, ...]
 * level: (columns, catch_all, ((name, level), ...) of flattened objects);
 * children: ((field, level, width, required, scalar), ...), one per child table, where
 * scalar is the column of scalar elements (a column's 4-tuple) or None. */
static PyObject *rows(PyObject *Py_UNUSED(module), PyObject *args) {
    Plan plan, child_plans[MAX_CHILDREN];
    ChildPlan children[MAX_CHILDREN];
    memset(&plan, 0, sizeof plan);
    memset(child_plans, 0, sizeof child_plans);
    PyObject *top, *child_args, *documents, *result = NULL;
    int parsed = 0;
    if (!PyArg_ParseTuple(args, "O!nO!O!O", &PyTuple_Type, &top, &plan.width, &PyTuple_Type,
                          &plan.required, &PyTuple_Type, &child_args, &documents))
        return NULL;
    Py_ssize_t n = PyTuple_GET_SIZE(child_args);
    if (n > MAX_CHILDREN) {
        PyErr_SetString(PyExc_ValueError, "too many child tables for the C path");
        return NULL;
    }
    if (!level_of(top, &plan.top, 0)) goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        Plan *child = &child_plans[i];
        PyObject *field, *level, *scalar;
        child->element = 1;
        parsed = (int)i + 1;
        if (!PyArg_ParseTuple(PyTuple_GET_ITEM(child_args, i), "UO!nO!O", &field, &PyTuple_Type,
                              &level, &child->width, &PyTuple_Type, &child->required, &scalar) ||
            !level_of(level, &child->top, 0))
            goto done;
        if (scalar != Py_None && (!PyTuple_Check(scalar) || PyTuple_GET_SIZE(scalar) != 4)) {
            PyErr_SetString(PyExc_TypeError, "a scalar element's column is a 4-tuple or None");
            goto done;
        }
        child->scalar = scalar == Py_None ? NULL : scalar;
        if ((children[i].name = PyUnicode_AsUTF8AndSize(field, &children[i].length)) == NULL)
            goto done;
        children[i].plan = child;
        if (child->width < 2 + child->top.catch_all) {
            PyErr_SetString(PyExc_ValueError, "a child row has its key and position first");
            goto done;
        }
    }
    if (plan.width < 1 + plan.top.catch_all) {
        PyErr_SetString(PyExc_ValueError, "a row has at least its key column");
        goto done;
    }
    plan.n_children = (int)n;
    plan.children = children;
    result = each_row(documents, make_mapped, &plan);
done:
    free_level(&plan.top);
    for (int i = 0; i < parsed; i++) free_level(&child_plans[i].top);
    return result;
}

static PyMethodDef methods[] = {
    {"rows", rows, METH_VARARGS,
     "rows(level, width, required, children, documents): each raw BSON "
     "document's row tuple (with child tables: (row, rows of each child)), or None where "
     "the Python normalizer must decide."},
    {"users", users, METH_O,
     "users(documents): each raw users document's row, or None where the users rules "
     "(pydantic) must decide."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_fastrows", NULL, -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__fastrows(void) {
    PyDateTime_IMPORT;
    if (PyDateTimeAPI == NULL) return NULL;
    PyObject *decimal = PyImport_ImportModule("decimal");
    if (decimal == NULL) return NULL;
    Decimal = PyObject_GetAttrString(decimal, "Decimal");
    Py_DECREF(decimal);
    if (Decimal == NULL) return NULL;
    UTC = PyDateTimeAPI->TimeZone_UTC;
    Py_INCREF(UTC);
    return PyModule_Create(&module);
}
