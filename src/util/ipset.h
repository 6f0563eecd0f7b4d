/* Sets of IP addresses and networks ("10.0.0.0/8, ::1"): which peers are trusted proxies. */
#ifndef TESSERA_IPSET_H
#define TESSERA_IPSET_H

#include "util/status.h"

#include <stdbool.h>
#include <stdint.h>

#define TS_IPSET_MAX 32

struct ts_ipset {
    unsigned n;
    struct {
        uint8_t addr[16]; /* IPv4 as IPv4-mapped IPv6, so one comparison serves both */
        unsigned bits;    /* prefix length over the 128 bits */
    } nets[TS_IPSET_MAX];
};

/* Parses a list of addresses and networks separated by commas or spaces ("" = empty set).
 * TS_EINVAL with the offending item for anything else, or more than TS_IPSET_MAX items. */
int ts_ipset_parse(const char *list, struct ts_ipset *out, struct ts_err *err);

/* Whether text is one IPv4 or IPv6 address (no port, no brackets) inside the set. */
bool ts_ipset_contains(const struct ts_ipset *set, const char *text);

/* Parses one address (IPv4 or IPv6, no port) into its IPv4-mapped IPv6 form. */
bool ts_ip_parse(const char *text, uint8_t out[16]);

#endif
