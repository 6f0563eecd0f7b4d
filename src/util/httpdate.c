/* HTTP-date formatting and parsing, validators and conditional requests. */
#include "util/httpdate.h"

#include <stdio.h>
#include <string.h>

static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char *const long_days[] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                        "Thursday", "Friday", "Saturday"};
static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

static bool is_leap(long y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(long y, int m)
{
    static const int n[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 1 && is_leap(y) ? 29 : n[m];
}

/* Days since 1970-01-01 of a proleptic Gregorian date (m 0-11), counted in 400-year eras
 * that start on 1 March so the leap day falls at the end of each counted year. */
static long days_from_civil(long y, int m, int d)
{
    long yy = m < 2 ? y - 1 : y;
    long era = (yy >= 0 ? yy : yy - 399) / 400;
    long yoe = yy - era * 400;                        /* 0..399 */
    long mp = m < 2 ? m + 10 : m - 2;                 /* March = 0 */
    long doy = (153 * mp + 2) / 5 + d - 1;            /* 0..365 */
    long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; /* 0..146096 */
    return era * 146097 + doe - 719468;
}

/* Inverse of days_from_civil, for formatting without depending on the C library's time zone. */
static void civil_from_days(long z, long *y, int *m, int *d)
{
    z += 719468;
    long era = (z >= 0 ? z : z - 146096) / 146097;
    long doe = z - era * 146097;
    long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    long mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 2 : mp - 10);
    *y = yoe + era * 400 + (*m < 2);
}

static long floor_div(long a, long b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

void ts_http_date(time_t t, char *out, size_t size)
{
    long days_since = floor_div((long)t, 86400);
    long secs = (long)t - days_since * 86400;
    long y;
    int m, d;
    civil_from_days(days_since, &y, &m, &d);
    int wday = (int)(((days_since % 7) + 11) % 7); /* 1970-01-01 was a Thursday */
    snprintf(out, size, "%s, %02d %s %04ld %02ld:%02ld:%02ld GMT", days[wday], d, months[m], y,
             secs / 3600, secs / 60 % 60, secs % 60);
}

/* A cursor over the text: each reader consumes exactly what it matched or reports failure. */
struct cursor {
    const char *p;
};

static bool take(struct cursor *c, const char *lit)
{
    size_t n = strlen(lit);
    if (strncmp(c->p, lit, n) != 0)
        return false;
    c->p += n;
    return true;
}

static bool take_digits(struct cursor *c, int count, int *out)
{
    int v = 0;
    for (int i = 0; i < count; i++) {
        if (c->p[i] < '0' || c->p[i] > '9')
            return false;
        v = v * 10 + (c->p[i] - '0');
    }
    c->p += count;
    *out = v;
    return true;
}

/* Index of the name in table that the text starts with, or -1. */
static int take_name(struct cursor *c, const char *const *table, int n)
{
    for (int i = 0; i < n; i++)
        if (take(c, table[i]))
            return i;
    return -1;
}

struct fields {
    int wday, mday, mon, hh, mm, ss;
    long year;
};

static bool take_time(struct cursor *c, struct fields *f)
{
    return take_digits(c, 2, &f->hh) && take(c, ":") && take_digits(c, 2, &f->mm) && take(c, ":") &&
           take_digits(c, 2, &f->ss);
}

/* "Sun, 06 Nov 1994 08:49:37 GMT" */
static bool parse_imf(struct cursor *c, struct fields *f)
{
    int y;
    if ((f->wday = take_name(c, days, 7)) < 0 || !take(c, ", ") || !take_digits(c, 2, &f->mday) ||
        !take(c, " ") || (f->mon = take_name(c, months, 12)) < 0 || !take(c, " ") ||
        !take_digits(c, 4, &y) || !take(c, " ") || !take_time(c, f) || !take(c, " GMT"))
        return false;
    f->year = y;
    return true;
}

/* "Sunday, 06-Nov-94 08:49:37 GMT"; the century is settled later against the current year. */
static bool parse_rfc850(struct cursor *c, struct fields *f)
{
    int y;
    if ((f->wday = take_name(c, long_days, 7)) < 0 || !take(c, ", ") ||
        !take_digits(c, 2, &f->mday) || !take(c, "-") || (f->mon = take_name(c, months, 12)) < 0 ||
        !take(c, "-") || !take_digits(c, 2, &y) || !take(c, " ") || !take_time(c, f) ||
        !take(c, " GMT"))
        return false;
    f->year = y;
    return true;
}

/* "Sun Nov  6 08:49:37 1994": a one-digit day is padded with a space, not a zero. */
static bool parse_asctime(struct cursor *c, struct fields *f)
{
    int y;
    if ((f->wday = take_name(c, days, 7)) < 0 || !take(c, " ") ||
        (f->mon = take_name(c, months, 12)) < 0 || !take(c, " "))
        return false;
    if (!(take(c, " ") ? take_digits(c, 1, &f->mday) : take_digits(c, 2, &f->mday)))
        return false;
    if (!take(c, " ") || !take_time(c, f) || !take(c, " ") || !take_digits(c, 4, &y))
        return false;
    f->year = y;
    return true;
}

/* The latest year ending in yy that is at most 50 years after now_year (RFC 9110 5.6.7). */
static long widen_year(int yy, long now_year)
{
    long limit = now_year + 50;
    long y = limit - ((limit % 100) + 100 - yy) % 100;
    return y;
}

static bool skip_ows(struct cursor *c)
{
    while (*c->p == ' ' || *c->p == '\t')
        c->p++;
    return *c->p == '\0';
}

time_t ts_http_date_parse_at(const char *text, time_t now)
{
    if (!text)
        return -1;
    while (*text == ' ' || *text == '\t')
        text++;
    struct fields f;
    struct cursor c = {text};
    bool two_digit_year = false;
    if (!(parse_imf(&c, &f) && skip_ows(&c))) {
        c.p = text;
        if (parse_rfc850(&c, &f) && skip_ows(&c)) {
            two_digit_year = true;
        } else {
            c.p = text;
            if (!(parse_asctime(&c, &f) && skip_ows(&c)))
                return -1;
        }
    }
    if (two_digit_year) {
        long now_days = floor_div((long)now, 86400);
        long now_year;
        int m, d;
        civil_from_days(now_days, &now_year, &m, &d);
        f.year = widen_year((int)f.year, now_year);
    }
    if (f.year < 1970 || f.year > 9999 || f.mday < 1 || f.mday > days_in_month(f.year, f.mon) ||
        f.hh > 23 || f.mm > 59 || f.ss > 60)
        return -1;
    long d = days_from_civil(f.year, f.mon, f.mday);
    if ((d + 4) % 7 != f.wday)
        return -1; /* a weekday that contradicts the date: the date is not trustworthy */
    return (time_t)d * 86400 + f.hh * 3600 + f.mm * 60 + f.ss;
}

time_t ts_http_date_parse(const char *text)
{
    return ts_http_date_parse_at(text, time(NULL));
}

/* The opaque-tag of an entity-tag, without its weakness prefix: W/"x" and "x" compare equal
 * under the weak comparison that If-None-Match uses (RFC 9110 13.1.2). */
static const char *opaque_tag(const char *tag, size_t len, size_t *out_len)
{
    if (len >= 2 && tag[0] == 'W' && tag[1] == '/') {
        tag += 2;
        len -= 2;
    }
    *out_len = len;
    return tag;
}

/* If-None-Match is "*" or a comma-separated list of entity-tags, each maybe W/-prefixed. A
 * quoted tag may hold commas, so members are split on the closing quote, not on commas. */
static bool etag_listed(const char *list, const char *etag)
{
    size_t want_len;
    const char *want = opaque_tag(etag, strlen(etag), &want_len);
    const char *p = list;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (*p == '\0')
            return false;
        if (*p == '*')
            return true;
        const char *start = p;
        if (p[0] == 'W' && p[1] == '/')
            p += 2;
        if (*p == '"') {
            const char *close = strchr(p + 1, '"');
            if (!close)
                return false; /* unterminated: nothing more can be trusted */
            p = close + 1;
        } else {
            p += strcspn(p, ", \t"); /* not a valid tag, but step over it */
        }
        size_t got_len;
        const char *got = opaque_tag(start, (size_t)(p - start), &got_len);
        if (got_len == want_len && memcmp(got, want, want_len) == 0)
            return true;
    }
}

bool ts_not_modified(const char *inm, const char *ims, const char *etag, time_t mtime)
{
    if (inm)
        return etag_listed(inm, etag);
    if (ims) {
        time_t since = ts_http_date_parse(ims);
        return since >= 0 && mtime <= since;
    }
    return false;
}
