/* Accept-style header lists, read once here for every protocol that negotiates. */
#include "util/accept.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The q-value of one element's parameters ("; q=0.5"); 1 when absent, 0 when malformed. */
static double element_q(const char *params, size_t len)
{
    const char *p = params, *end = params + len;
    while (p < end) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        const char *stop = semi ? semi : end;
        while (p < stop && (*p == ' ' || *p == '\t'))
            p++;
        if (stop - p >= 2 && (p[0] == 'q' || p[0] == 'Q') && p[1] == '=') {
            char num[8] = {0};
            size_t n = (size_t)(stop - p - 2);
            while (n > 0 && (p[2 + n - 1] == ' ' || p[2 + n - 1] == '\t'))
                n--;
            if (n == 0 || n >= sizeof num)
                return 0;
            memcpy(num, p + 2, n);
            char *tail;
            double q = strtod(num, &tail);
            return *tail == '\0' && q >= 0 && q <= 1 ? q : 0;
        }
        p = semi ? semi + 1 : end;
    }
    return 1;
}

const char *ts_list_next(const char *p, struct ts_list_elem *e)
{
    if (!p || !*p)
        return NULL;
    size_t len = strcspn(p, ",");
    const char *s = p, *end = p + len;
    while (s < end && (*s == ' ' || *s == '\t'))
        s++;
    size_t name = 0;
    while (s + name < end && s[name] != ';' && s[name] != ' ' && s[name] != '\t')
        name++;
    const char *params = memchr(s, ';', (size_t)(end - s));
    e->name = s;
    e->name_len = name;
    e->q = params ? element_q(params + 1, (size_t)(end - params - 1)) : 1;
    return *end ? end + 1 : end;
}

double ts_accept_q(const char *accept, const char *type)
{
    const char *slash = strchr(type, '/');
    size_t major = slash ? (size_t)(slash - type) : strlen(type);
    double best = -1;
    int best_rank = -1;
    struct ts_list_elem e;
    for (const char *p = accept; (p = ts_list_next(p, &e)) != NULL;) {
        int rank = -1;
        if (e.name_len == strlen(type) && !strncasecmp(e.name, type, e.name_len))
            rank = 2;
        else if (e.name_len == major + 2 && !strncasecmp(e.name, type, major + 1) &&
                 e.name[major + 1] == '*')
            rank = 1;
        else if (e.name_len == 3 && !strncmp(e.name, "*/*", 3))
            rank = 0;
        if (rank > best_rank) {
            best = e.q;
            best_rank = rank;
        }
    }
    return best;
}
