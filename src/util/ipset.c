/* Address sets: every address is kept as 16 bytes, IPv4 mapped into ::ffff:0:0/96. */
#include "util/ipset.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

bool ts_ip_parse(const char *text, uint8_t out[16])
{
    struct in_addr v4;
    if (inet_pton(AF_INET, text, &v4) == 1) {
        memset(out, 0, 10);
        out[10] = out[11] = 0xff;
        memcpy(out + 12, &v4, 4);
        return true;
    }
    struct in6_addr v6;
    if (inet_pton(AF_INET6, text, &v6) == 1) {
        memcpy(out, &v6, 16);
        return true;
    }
    return false;
}

static bool is_mapped_v4(const uint8_t a[16])
{
    static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return !memcmp(a, prefix, sizeof prefix);
}

static int parse_item(const char *item, struct ts_ipset *set, struct ts_err *err)
{
    char text[64];
    size_t len = strlen(item);
    if (len >= sizeof text)
        return ts_fail(err, TS_EINVAL, "trusted proxies: '%.64s' is not an address", item);
    memcpy(text, item, len + 1);
    char *slash = strchr(text, '/');
    if (slash)
        *slash = '\0';
    if (set->n == TS_IPSET_MAX)
        return ts_fail(err, TS_EINVAL, "trusted proxies: more than %d items", TS_IPSET_MAX);
    uint8_t *addr = set->nets[set->n].addr;
    if (!ts_ip_parse(text, addr))
        return ts_fail(err, TS_EINVAL, "trusted proxies: '%s' is not an address", item);
    unsigned max = is_mapped_v4(addr) ? 32 : 128, bits = max;
    if (slash) {
        char *end;
        long b = strtol(slash + 1, &end, 10);
        if (!slash[1] || *end || b < 0 || b > (long)max)
            return ts_fail(err, TS_EINVAL, "trusted proxies: bad prefix length in '%s'", item);
        bits = (unsigned)b;
    }
    set->nets[set->n++].bits = bits + (128 - max);
    return TS_OK;
}

int ts_ipset_parse(const char *list, struct ts_ipset *out, struct ts_err *err)
{
    memset(out, 0, sizeof *out);
    const char *p = list ? list : "";
    while (*p) {
        size_t skip = strspn(p, ", \t");
        p += skip;
        size_t len = strcspn(p, ", \t");
        if (!len)
            break;
        char item[80];
        if (len >= sizeof item)
            return ts_fail(err, TS_EINVAL, "trusted proxies: '%.40s...' is not an address", p);
        memcpy(item, p, len);
        item[len] = '\0';
        int rc = parse_item(item, out, err);
        if (rc)
            return rc;
        p += len;
    }
    return TS_OK;
}

static bool in_net(const uint8_t a[16], const uint8_t net[16], unsigned bits)
{
    unsigned whole = bits / 8, rest = bits % 8;
    if (memcmp(a, net, whole))
        return false;
    if (!rest)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[whole] & mask) == (net[whole] & mask);
}

bool ts_ipset_contains(const struct ts_ipset *set, const char *text)
{
    uint8_t a[16];
    if (!set->n || !text || !ts_ip_parse(text, a))
        return false;
    for (unsigned i = 0; i < set->n; i++)
        if (in_net(a, set->nets[i].addr, set->nets[i].bits))
            return true;
    return false;
}
