/* The NIC/backend junction: frame queueing, link state, and the "--net"
 * option syntax. */
#include "devices/net/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/util.h"

void net_backend_init(struct net_backend *nb, const struct net_backend_ops *ops, const char *kind)
{
    memset(nb, 0, sizeof(*nb));
    nb->ops = ops;
    nb->kind = kind;
    nb->link_up = true;
}

void net_backend_attach(struct net_backend *nb, const struct net_nic_ops *nic, void *opaque)
{
    nb->nic = nic;
    nb->nic_opaque = opaque;
    if (!nic)
        net_backend_purge(nb);
}

int net_backend_send(struct net_backend *nb, const struct iovec *iov, int iovcnt)
{
    size_t len = 0;
    for (int i = 0; i < iovcnt; i++)
        len += iov[i].iov_len;
    if (!nb->link_up || len < NET_ETH_HLEN || len > NET_MAX_FRAME) {
        nb->stats.tx_dropped++;
        return -1;
    }
    const uint8_t *frame;
    if (iovcnt == 1) {
        frame = iov[0].iov_base;
    } else {
        if (!nb->txbuf && !(nb->txbuf = malloc(NET_MAX_FRAME))) {
            nb->stats.tx_dropped++;
            return -1;
        }
        size_t off = 0;
        for (int i = 0; i < iovcnt; i++) {
            memcpy(nb->txbuf + off, iov[i].iov_base, iov[i].iov_len);
            off += iov[i].iov_len;
        }
        frame = nb->txbuf;
    }
    nb->stats.tx_frames++;
    nb->stats.tx_bytes += len;
    nb->ops->transmit(nb, frame, len);
    return 0;
}

static bool nic_take(struct net_backend *nb, const uint8_t *frame, size_t len)
{
    if (!nb->nic)
        return true;   /* nobody listens: the frame is gone */
    if (nb->nic->can_receive && !nb->nic->can_receive(nb->nic_opaque))
        return false;
    return nb->nic->receive(nb->nic_opaque, frame, len);
}

void net_backend_rx_ready(struct net_backend *nb)
{
    if (nb->flushing)
        return;   /* a receive callback asked again: the outer loop goes on */
    nb->flushing = true;
    while (nb->rxq_head) {
        struct net_frame *f = nb->rxq_head;
        if (!nic_take(nb, f->data, f->len))
            break;
        nb->rxq_head = f->next;
        if (!nb->rxq_head)
            nb->rxq_tail = NULL;
        nb->rxq_frames--;
        nb->rxq_bytes -= f->len;
        nb->stats.rx_frames++;
        nb->stats.rx_bytes += f->len;
        free(f);
    }
    nb->flushing = false;
    if (!nb->rxq_head)
        nb->overflow_reported = false;
}

void net_backend_deliver(struct net_backend *nb, const uint8_t *frame, size_t len)
{
    if (!nb->link_up || !nb->nic || len > NET_MAX_FRAME) {
        nb->stats.rx_dropped++;
        return;
    }
    /* Order is kept: a new frame waits behind the queued ones. */
    if (!nb->rxq_head && !nb->flushing && nic_take(nb, frame, len)) {
        nb->stats.rx_frames++;
        nb->stats.rx_bytes += len;
        return;
    }
    if (nb->rxq_frames >= NET_RXQ_MAX_FRAMES || nb->rxq_bytes + len > NET_RXQ_MAX_BYTES) {
        nb->stats.rx_dropped++;
        if (!nb->overflow_reported) {
            log_warn("net: the guest is not taking frames; dropping beyond %u queued",
                     nb->rxq_frames);
            nb->overflow_reported = true;
        }
        return;
    }
    struct net_frame *f = malloc(sizeof(*f) + len);
    if (!f) {
        nb->stats.rx_dropped++;
        return;
    }
    f->next = NULL;
    f->len = len;
    memcpy(f->data, frame, len);
    if (nb->rxq_tail)
        nb->rxq_tail->next = f;
    else
        nb->rxq_head = f;
    nb->rxq_tail = f;
    nb->rxq_frames++;
    nb->rxq_bytes += len;
    nb->stats.rx_queued++;
}

void net_backend_purge(struct net_backend *nb)
{
    while (nb->rxq_head) {
        struct net_frame *f = nb->rxq_head;
        nb->rxq_head = f->next;
        free(f);
    }
    nb->rxq_tail = NULL;
    nb->rxq_frames = 0;
    nb->rxq_bytes = 0;
}

void net_backend_set_link(struct net_backend *nb, bool up)
{
    if (nb->link_up == up)
        return;
    nb->link_up = up;
    if (!up)
        net_backend_purge(nb);
    if (nb->nic && nb->nic->link_changed)
        nb->nic->link_changed(nb->nic_opaque, up);
}

bool net_backend_link_up(const struct net_backend *nb)
{
    return nb->link_up;
}

void net_backend_free(struct net_backend *nb)
{
    if (!nb)
        return;
    net_backend_purge(nb);
    free(nb->txbuf);
    nb->txbuf = NULL;
    nb->ops->destroy(nb);
}

uint8_t *net_rom_load(const char *path, uint64_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "option ROM '%s': %s", path, strerror(errno));
        return NULL;
    }
    uint8_t *buf = NULL;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0)
        n = ftell(f);
    if (n <= 0 || n > (long)(16 * MiB) || fseek(f, 0, SEEK_SET) != 0) {
        snprintf(err, errlen, "option ROM '%s': empty, too large or unreadable", path);
        goto out;
    }
    uint64_t sz = 2048;
    while (sz < (uint64_t)n)
        sz <<= 1;
    buf = calloc(1, sz);
    if (!buf) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
        snprintf(err, errlen, "option ROM '%s': short read", path);
        free(buf);
        buf = NULL;
        goto out;
    }
    *len = sz;
out:
    fclose(f);
    return buf;
}

/* --- options ------------------------------------------------------------ */

const char *net_model_name(enum net_model m)
{
    return m == NET_MODEL_E1000 ? "e1000" : "virtio";
}

void net_default_mac(unsigned index, uint8_t mac[NET_ETH_ALEN])
{
    /* 52:54:00 is the locally administered prefix every VMM uses. */
    static const uint8_t base[NET_ETH_ALEN] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
    memcpy(mac, base, NET_ETH_ALEN);
    unsigned v = (unsigned)base[4] << 8 | base[5];
    v += index;
    mac[4] = (uint8_t)(v >> 8);
    mac[5] = (uint8_t)v;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int net_parse_mac(const char *s, uint8_t mac[NET_ETH_ALEN])
{
    for (int i = 0; i < NET_ETH_ALEN; i++) {
        int hi = hexval(s[0]), lo = hi < 0 ? -1 : hexval(s[1]);
        if (hi < 0 || lo < 0)
            return -1;
        mac[i] = (uint8_t)(hi << 4 | lo);
        s += 2;
        if (i < NET_ETH_ALEN - 1) {
            if (*s != ':' && *s != '-')
                return -1;
            s++;
        }
    }
    if (*s)
        return -1;
    return (mac[0] & 1) ? -1 : 0;   /* a NIC address is never multicast */
}

static int parse_port(const char *s, size_t n, uint16_t *port)
{
    if (n == 0 || n > 5)
        return -1;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v == 0 || v > 65535)
        return -1;
    *port = (uint16_t)v;
    return 0;
}

static int parse_addr(const char *s, size_t n, struct in_addr *a, const char *dflt)
{
    char buf[INET_ADDRSTRLEN];
    if (n == 0)
        return inet_pton(AF_INET, dflt, a) == 1 ? 0 : -1;
    if (n >= sizeof(buf))
        return -1;
    memcpy(buf, s, n);
    buf[n] = 0;
    return inet_pton(AF_INET, buf, a) == 1 ? 0 : -1;
}

int net_parse_hostfwd(const char *spec, struct net_hostfwd *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    const char *p = spec;
    if (!strncmp(p, "tcp:", 4)) {
        p += 4;
    } else if (!strncmp(p, "udp:", 4)) {
        out->udp = true;
        p += 4;
    } else if (*p == ':') {
        p++;   /* protocol left out: tcp */
    } else {
        snprintf(err, errlen, "hostfwd '%s': expected tcp:ADDR:HPORT-GADDR:GPORT", spec);
        return -1;
    }
    const char *dash = strchr(p, '-');
    const char *c1 = strchr(p, ':');
    if (!dash || !c1 || c1 > dash) {
        snprintf(err, errlen, "hostfwd '%s': expected [ADDR]:HPORT-[GADDR]:GPORT", spec);
        return -1;
    }
    const char *g = dash + 1, *c2 = strchr(g, ':');
    if (!c2) {
        snprintf(err, errlen, "hostfwd '%s': expected [GADDR]:GPORT after '-'", spec);
        return -1;
    }
    if (parse_addr(p, (size_t)(c1 - p), &out->host_addr, "127.0.0.1") < 0 ||
        parse_addr(g, (size_t)(c2 - g), &out->guest_addr, "10.0.2.15") < 0) {
        snprintf(err, errlen, "hostfwd '%s': bad IPv4 address", spec);
        return -1;
    }
    if (parse_port(c1 + 1, (size_t)(dash - c1 - 1), &out->host_port) < 0 ||
        parse_port(c2 + 1, strlen(c2 + 1), &out->guest_port) < 0) {
        snprintf(err, errlen, "hostfwd '%s': ports must be 1-65535", spec);
        return -1;
    }
    return 0;
}

static int parse_bool(const char *v, bool *out)
{
    if (!strcmp(v, "on") || !strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "1"))
        *out = true;
    else if (!strcmp(v, "off") || !strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "0"))
        *out = false;
    else
        return -1;
    return 0;
}

int net_parse_opts(const char *spec, struct net_user_opts *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    out->model = NET_MODEL_VIRTIO;
    out->ipv6 = true;
    if (!strcmp(spec, "none")) {
        out->none = true;
        return 0;
    }
    char *copy = strdup(spec);
    if (!copy) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int ret = -1;
    char *save = NULL;
    char *tok = strtok_r(copy, ",", &save);
    if (!tok || strcmp(tok, "user")) {
        snprintf(err, errlen, "--net '%s': expected 'user[,...]' or 'none'", spec);
        goto out;
    }
    while ((tok = strtok_r(NULL, ",", &save))) {
        char *eq = strchr(tok, '=');
        if (!eq) {
            snprintf(err, errlen, "--net: '%s' is not key=value", tok);
            goto out;
        }
        *eq = 0;
        const char *key = tok, *val = eq + 1;
        if (!strcmp(key, "model")) {
            if (!strcmp(val, "virtio") || !strcmp(val, "virtio-net"))
                out->model = NET_MODEL_VIRTIO;
            else if (!strcmp(val, "e1000") || !strcmp(val, "82540em"))
                out->model = NET_MODEL_E1000;
            else {
                snprintf(err, errlen, "--net: unknown model '%s' (virtio, e1000)", val);
                goto out;
            }
        } else if (!strcmp(key, "mac")) {
            if (net_parse_mac(val, out->mac) < 0) {
                snprintf(err, errlen, "--net: bad MAC address '%s' (aa:bb:cc:dd:ee:ff, unicast)", val);
                goto out;
            }
            out->has_mac = true;
        } else if (!strcmp(key, "hostfwd")) {
            if (out->nhostfwd == NET_MAX_HOSTFWD) {
                snprintf(err, errlen, "--net: at most %d hostfwd rules", NET_MAX_HOSTFWD);
                goto out;
            }
            if (net_parse_hostfwd(val, &out->hostfwd[out->nhostfwd], err, errlen) < 0)
                goto out;
            out->nhostfwd++;
        } else if (!strcmp(key, "tftp")) {
            if (!*val || strlen(val) >= sizeof(out->tftp)) {
                snprintf(err, errlen, "--net: bad tftp directory");
                goto out;
            }
            strcpy(out->tftp, val);
        } else if (!strcmp(key, "bootfile")) {
            if (!*val || strlen(val) >= sizeof(out->bootfile)) {
                snprintf(err, errlen, "--net: bad bootfile");
                goto out;
            }
            strcpy(out->bootfile, val);
        } else if (!strcmp(key, "ipv6")) {
            if (parse_bool(val, &out->ipv6) < 0) {
                snprintf(err, errlen, "--net: ipv6=on|off");
                goto out;
            }
        } else if (!strcmp(key, "restrict")) {
            if (parse_bool(val, &out->restrict_host) < 0) {
                snprintf(err, errlen, "--net: restrict=on|off");
                goto out;
            }
        } else {
            snprintf(err, errlen, "--net: unknown option '%s'", key);
            goto out;
        }
    }
    ret = 0;
out:
    free(copy);
    return ret;
}
