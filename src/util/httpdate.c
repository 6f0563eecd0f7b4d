/* HTTP-date formatting and parsing, validators and conditional requests. */
#define _XOPEN_SOURCE 700
#include "util/httpdate.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

void ts_http_date(time_t t, char *out, size_t size)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, size, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday], tm.tm_mday,
             months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

time_t ts_http_date_parse(const char *text)
{
    char day[4], mon[4], zone[4];
    int mday, year, hh, mm, ss;
    if (sscanf(text, "%3s %d %3s %d %d:%d:%d %3s", day, &mday, mon, &year, &hh, &mm, &ss,
               zone) != 8) {
        /* "Sun," is read with its comma, so retry with the comma as a literal. */
        if (sscanf(text, "%3s, %d %3s %d %d:%d:%d %3s", day, &mday, mon, &year, &hh, &mm, &ss,
                   zone) != 8)
            return -1;
    }
    int m = -1;
    for (int i = 0; i < 12; i++)
        if (!strcmp(mon, months[i]))
            m = i;
    if (m < 0 || strcmp(zone, "GMT") != 0 || mday < 1 || mday > 31 || year < 1970 ||
        year > 9999 || hh < 0 || hh > 23 || mm < 0 || mm > 59 || ss < 0 || ss > 60)
        return -1;
    struct tm tm = {0};
    tm.tm_mday = mday;
    tm.tm_mon = m;
    tm.tm_year = year - 1900;
    tm.tm_hour = hh;
    tm.tm_min = mm;
    tm.tm_sec = ss;
    return timegm(&tm);
}

/* If-None-Match is a list of quoted tags (maybe W/-prefixed) or "*". */
static bool etag_listed(const char *list, const char *etag)
{
    size_t elen = strlen(etag);
    const char *p = list;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (*p == '*')
            return true;
        if (!strncmp(p, "W/", 2))
            p += 2;
        if (!strncmp(p, etag, elen) && (p[elen] == '\0' || p[elen] == ',' || p[elen] == ' '))
            return true;
        p += strcspn(p, ",");
    }
    return false;
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
