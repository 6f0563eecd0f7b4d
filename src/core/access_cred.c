/* Credentials of restricted images: signed cookies and tokens, the user file, networks. */
#include "core/access.h"

#include <arpa/inet.h>
#include <crypt.h>
#include <errno.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAYLOAD_MAX 2048

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int b64_append(struct ts_buf *out, const unsigned char *in, size_t n)
{
    int rc = TS_OK;
    for (size_t i = 0; i < n && rc == TS_OK; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        size_t left = n - i;
        if (left > 1)
            v |= (uint32_t)in[i + 1] << 8;
        if (left > 2)
            v |= in[i + 2];
        char q[4] = {b64url[(v >> 18) & 63], b64url[(v >> 12) & 63], b64url[(v >> 6) & 63],
                     b64url[v & 63]};
        rc = ts_buf_append(out, q, left > 2 ? 4 : left + 1);
    }
    return rc;
}

static int b64_value(char c)
{
    const char *p = c ? strchr(b64url, c) : NULL;
    return p ? (int)(p - b64url) : -1;
}

/* Decodes unpadded base64url; false for any other character or an impossible length. */
static bool b64_decode(const char *in, size_t n, unsigned char *out, size_t cap, size_t *len)
{
    if (n % 4 == 1 || n / 4 * 3 + 2 > cap)
        return false;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        uint32_t v = 0;
        size_t k = n - i < 4 ? n - i : 4;
        for (size_t j = 0; j < 4; j++) {
            int d = j < k ? b64_value(in[i + j]) : 0;
            if (d < 0)
                return false;
            v = v << 6 | (uint32_t)d;
        }
        /* One spelling per value: bits past the last byte must be zero. */
        if ((k == 2 && (v & 0xffff)) || (k == 3 && (v & 0xff)))
            return false;
        out[o++] = (unsigned char)(v >> 16);
        if (k > 2)
            out[o++] = (unsigned char)(v >> 8);
        if (k > 3)
            out[o++] = (unsigned char)v;
    }
    *len = o;
    return true;
}

static void mac(const struct ts_access *a, const unsigned char *data, size_t n,
                unsigned char out[32])
{
    unsigned int len = 32;
    HMAC(EVP_sha256(), a->secret, (int)a->secret_len, data, n, out, &len);
}

/* Names and users are plain words; an origin is scheme://host[:port]. Nothing that could
 * split a credential's fields ('|') or a header. */
static bool word_ok(const char *s, bool allow_comma)
{
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '.' || *s == '_' || *s == '-' || *s == '@' || (allow_comma && *s == ',')))
            return false;
    return true;
}

bool ts_access_origin_ok(const char *o)
{
    const char *rest = !strncmp(o, "https://", 8)  ? o + 8
                       : !strncmp(o, "http://", 7) ? o + 7
                                                   : NULL;
    if (!rest || !*rest || strlen(o) >= 256)
        return false;
    for (; *rest; rest++)
        if (!((*rest >= 'a' && *rest <= 'z') || (*rest >= 'A' && *rest <= 'Z') ||
              (*rest >= '0' && *rest <= '9') || *rest == '.' || *rest == '-' || *rest == ':' ||
              *rest == '[' || *rest == ']'))
            return false;
    return true;
}

int ts_access_sign(const struct ts_access *a, char kind, const struct ts_grant *g,
                   struct ts_buf *out)
{
    if (!word_ok(g->rules, true) || !word_ok(g->user, false) ||
        (g->origin[0] && !ts_access_origin_ok(g->origin)))
        return TS_EINVAL;
    unsigned char nonce[9] = {0};
    if (kind == TS_CRED_TOKEN && RAND_bytes(nonce, sizeof nonce) != 1)
        return TS_EIO;
    struct ts_buf payload = {0}, n64 = {0};
    ts_buf_init_capped(&payload, PAYLOAD_MAX);
    int rc = b64_append(&n64, nonce, sizeof nonce);
    rc = rc ? rc
            : ts_buf_appendf(&payload, "%c1|%" PRId64 "|%s|%s|%s|%s", kind, g->expires, g->rules,
                             g->origin, g->user,
                             kind == TS_CRED_TOKEN ? (const char *)ts_buf_str(&n64) : "");
    unsigned char sig[32];
    if (rc == TS_OK)
        mac(a, payload.data, payload.len, sig);
    rc = rc ? rc : b64_append(out, payload.data, payload.len);
    rc = rc ? rc : ts_buf_append(out, ".", 1);
    rc = rc ? rc : b64_append(out, sig, sizeof sig);
    ts_buf_free(&payload);
    ts_buf_free(&n64);
    return rc;
}

/* Copies the next '|'-separated field of p into out; false when it does not fit. */
static bool field(const char **p, char *out, size_t cap)
{
    size_t n = strcspn(*p, "|");
    if (n >= cap)
        return false;
    memcpy(out, *p, n);
    out[n] = '\0';
    *p += n + ((*p)[n] == '|');
    return true;
}

enum ts_cred ts_access_verify(const struct ts_access *a, char kind, const char *text, size_t len,
                              int64_t now, struct ts_grant *g)
{
    if (!text || !len)
        return TS_CRED_MISSING;
    const char *dot = memchr(text, '.', len);
    unsigned char payload[PAYLOAD_MAX + 1], sig[48], want[32];
    size_t plen, slen;
    if (!dot || !b64_decode(text, (size_t)(dot - text), payload, PAYLOAD_MAX, &plen) ||
        !b64_decode(dot + 1, len - (size_t)(dot - text) - 1, sig, sizeof sig, &slen) ||
        slen != sizeof want)
        return TS_CRED_INVALID;
    mac(a, payload, plen, want);
    if (CRYPTO_memcmp(sig, want, sizeof want) != 0)
        return TS_CRED_INVALID;
    /* Genuine from here on: the server wrote it. The kind keeps tokens from passing as cookies. */
    payload[plen] = '\0';
    if (memchr(payload, '\0', plen) || plen < 3 || payload[0] != (unsigned char)kind ||
        payload[1] != '1' || payload[2] != '|')
        return TS_CRED_INVALID;
    const char *p = (const char *)payload + 3;
    char exp[24];
    struct ts_grant got = {0};
    if (!field(&p, exp, sizeof exp) || !field(&p, got.rules, sizeof got.rules) ||
        !field(&p, got.origin, sizeof got.origin) || !field(&p, got.user, sizeof got.user))
        return TS_CRED_INVALID;
    char *end;
    errno = 0;
    got.expires = strtoll(exp, &end, 10);
    if (errno || *end || end == exp)
        return TS_CRED_INVALID;
    if (got.expires <= now)
        return TS_CRED_EXPIRED;
    *g = got;
    return TS_CRED_OK;
}

bool ts_grant_has(const struct ts_grant *g, const char *rule)
{
    size_t n = strlen(rule);
    for (const char *p = g->rules; *p;) {
        size_t k = strcspn(p, ",");
        if (k == n && !strncmp(p, rule, n))
            return true;
        p += k + (p[k] == ',');
    }
    return false;
}

bool ts_grant_add(struct ts_grant *g, const char *rule)
{
    if (ts_grant_has(g, rule))
        return true;
    size_t have = strlen(g->rules), n = strlen(rule);
    if (have + n + 2 > sizeof g->rules)
        return false;
    if (have)
        g->rules[have++] = ',';
    memcpy(g->rules + have, rule, n + 1);
    return true;
}

const char *ts_access_cookie(const char *header, size_t *len)
{
    size_t name = strlen(TS_ACCESS_COOKIE);
    for (const char *p = header; p && *p;) {
        while (*p == ' ' || *p == '\t')
            p++;
        size_t k = strcspn(p, ";");
        if (k > name && !strncmp(p, TS_ACCESS_COOKIE, name) && p[name] == '=') {
            *len = k - name - 1;
            while (*len && (p[name + *len] == ' ' || p[name + *len] == '\t'))
                (*len)--;
            return p + name + 1;
        }
        p += k + (p[k] == ';');
    }
    *len = 0;
    return NULL;
}

int ts_access_check_user(const struct ts_access *a, const char *user, const char *password,
                         struct ts_err *err)
{
    if (!a->users[0])
        return ts_fail(err, TS_EFORBIDDEN, "no user file is configured");
    if (!*user || !word_ok(user, false) || strlen(user) >= 64)
        return ts_fail(err, TS_EFORBIDDEN, "unknown user or wrong password");
    FILE *f = fopen(a->users, "r");
    if (!f)
        return ts_fail(err, TS_EIO, "cannot read the user file");
    char line[1024];
    char hash[1024] = "";
    size_t n = strlen(user);
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (!strncmp(line, user, n) && line[n] == ':') {
            snprintf(hash, sizeof hash, "%s", line + n + 1);
            break;
        }
    }
    fclose(f);
    /* crypt_r's state is large (about 32 KB): not on a worker's stack. */
    struct crypt_data *cd = calloc(1, sizeof *cd);
    if (!cd)
        return ts_fail(err, TS_ENOMEM, "out of memory");
    /* Unknown users cost a hash too, so timing does not tell which names exist. */
    const char *setting = hash[0] ? hash : "$2b$10$abcdefghijklmnopqrstuu";
    const char *got = crypt_r(password, setting, cd);
    bool ok = hash[0] && got && got[0] != '*' && strlen(got) == strlen(hash) &&
              CRYPTO_memcmp(got, hash, strlen(hash)) == 0;
    free(cd);
    return ok ? TS_OK : ts_fail(err, TS_EFORBIDDEN, "unknown user or wrong password");
}

int ts_access_parse_net(const char *text, struct ts_access_net *out)
{
    char host[64];
    const char *slash = strchr(text, '/');
    size_t n = slash ? (size_t)(slash - text) : strlen(text);
    if (n == 0 || n >= sizeof host)
        return TS_EINVAL;
    memcpy(host, text, n);
    host[n] = '\0';
    memset(out, 0, sizeof *out);
    unsigned max;
    if (inet_pton(AF_INET, host, out->addr + 12) == 1) {
        out->addr[10] = out->addr[11] = 0xff;
        max = 32;
    } else if (inet_pton(AF_INET6, host, out->addr) == 1) {
        max = 128;
    } else {
        return TS_EINVAL;
    }
    unsigned long bits = max;
    if (slash) {
        char *end;
        errno = 0;
        bits = strtoul(slash + 1, &end, 10);
        if (errno || *end || end == slash + 1 || bits > max)
            return TS_EINVAL;
    }
    out->bits = (unsigned)bits + (128 - max);
    return TS_OK;
}

bool ts_access_in_networks(const struct ts_access_rule *r, const char *addr)
{
    struct ts_access_net a;
    if (!addr || ts_access_parse_net(addr, &a) != TS_OK || a.bits != 128)
        return false;
    for (int i = 0; i < r->nnets; i++) {
        const struct ts_access_net *n = &r->nets[i];
        unsigned full = n->bits / 8, rest = n->bits % 8;
        if (memcmp(a.addr, n->addr, full) != 0)
            continue;
        uint8_t m = (uint8_t)(0xff << (8 - rest));
        if (rest == 0 || (a.addr[full] & m) == (n->addr[full] & m))
            return true;
    }
    return false;
}

int ts_access_external(const struct ts_access_rule *r, const struct ts_request *req)
{
    if (r->nnets && ts_access_in_networks(r, req->remote))
        return 1;
    if (!r->header[0])
        return 0;
    const char *v = ts_request_header(req, r->header);
    if (!v || !*v)
        return 0;
    return !r->header_value[0] || !strcmp(v, r->header_value) ? 1 : -1;
}
