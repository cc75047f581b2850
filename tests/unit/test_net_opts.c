/* The "--net" option syntax (devices/net/net.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>

#include "devices/net/net.h"

static uint32_t ip(const char *s)
{
    struct in_addr a;
    assert_int_equal(inet_pton(AF_INET, s, &a), 1);
    return a.s_addr;
}

static void test_defaults(void **state)
{
    struct net_user_opts o;
    char err[256];
    assert_int_equal(net_parse_opts("user", &o, err, sizeof(err)), 0);
    assert_false(o.none);
    assert_int_equal(o.model, NET_MODEL_VIRTIO);
    assert_false(o.has_mac);
    assert_int_equal(o.nhostfwd, 0);
    assert_string_equal(o.tftp, "");
    assert_true(o.ipv6);
    assert_int_equal(net_parse_opts("none", &o, err, sizeof(err)), 0);
    assert_true(o.none);
}

static void test_full(void **state)
{
    struct net_user_opts o;
    char err[256];
    assert_int_equal(net_parse_opts("user,model=e1000,mac=52:54:00:aa:bb:0C,"
                                    "hostfwd=tcp::2222-:22,hostfwd=udp:0.0.0.0:5353-10.0.2.20:53,"
                                    "tftp=/srv/tftp,bootfile=pxelinux.0,ipv6=off",
                                    &o, err, sizeof(err)), 0);
    assert_int_equal(o.model, NET_MODEL_E1000);
    assert_true(o.has_mac);
    static const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0xaa, 0xbb, 0x0c };
    assert_memory_equal(o.mac, mac, 6);
    assert_int_equal(o.nhostfwd, 2);
    assert_false(o.hostfwd[0].udp);
    assert_int_equal(o.hostfwd[0].host_addr.s_addr, ip("127.0.0.1"));   /* default host address */
    assert_int_equal(o.hostfwd[0].host_port, 2222);
    assert_int_equal(o.hostfwd[0].guest_addr.s_addr, ip("10.0.2.15"));
    assert_int_equal(o.hostfwd[0].guest_port, 22);
    assert_true(o.hostfwd[1].udp);
    assert_int_equal(o.hostfwd[1].host_addr.s_addr, ip("0.0.0.0"));
    assert_int_equal(o.hostfwd[1].guest_addr.s_addr, ip("10.0.2.20"));
    assert_int_equal(o.hostfwd[1].guest_port, 53);
    assert_string_equal(o.tftp, "/srv/tftp");
    assert_string_equal(o.bootfile, "pxelinux.0");
    assert_false(o.ipv6);
}

static void test_errors(void **state)
{
    static const char *bad[] = {
        "", "tap", "user,model=rtl8139", "user,mac=01:00:5e:00:00:01", "user,mac=52:54:00:12:34",
        "user,mac=52:54:00:12:34:zz", "user,hostfwd=tcp::0-:22", "user,hostfwd=tcp::70000-:22",
        "user,hostfwd=sctp::22-:22", "user,hostfwd=tcp:1.2.3:22-:22", "user,hostfwd=tcp::22",
        "user,hostfwd=tcp::22-:", "user,tftp=", "user,frobnicate=1", "user,model",
        "user,ipv6=maybe",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct net_user_opts o;
        char err[256] = "";
        if (net_parse_opts(bad[i], &o, err, sizeof(err)) != -1)
            fail_msg("'%s' was accepted", bad[i]);
        assert_true(err[0] != 0);
    }
    /* Too many forwards. */
    char spec[2048] = "user";
    for (int i = 0; i <= NET_MAX_HOSTFWD; i++)
        snprintf(spec + strlen(spec), sizeof(spec) - strlen(spec), ",hostfwd=tcp::%d-:22", 1000 + i);
    struct net_user_opts o;
    char err[256];
    assert_int_equal(net_parse_opts(spec, &o, err, sizeof(err)), -1);
}

static void test_hostfwd_and_mac(void **state)
{
    struct net_hostfwd f;
    char err[256];
    assert_int_equal(net_parse_hostfwd("udp:127.0.0.1:6000-:7000", &f, err, sizeof(err)), 0);
    assert_true(f.udp);
    assert_int_equal(f.host_port, 6000);
    assert_int_equal(f.guest_port, 7000);
    assert_int_equal(net_parse_hostfwd("::8080-:80", &f, err, sizeof(err)), 0);
    assert_false(f.udp);
    uint8_t mac[6];
    net_default_mac(0, mac);
    static const uint8_t m0[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
    assert_memory_equal(mac, m0, 6);
    net_default_mac(0xaa, mac);   /* carries into the fifth byte */
    assert_int_equal(mac[4], 0x35);
    assert_int_equal(mac[5], 0x00);
    assert_string_equal(net_model_name(NET_MODEL_E1000), "e1000");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_full),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_hostfwd_and_mac),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
