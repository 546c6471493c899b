/*
 * The option-string parser, size parsing and the command-line parser:
 * what they accept and the messages for what they refuse.
 */
#include <string.h>

#include "system/cmdline.h"
#include "util/option.h"

static void test_opts_basic(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(OptList) o = opts_parse("disk.img,format=raw,if=virtio,readonly", "file", &err);
    g_assert_no_error(err);
    g_assert_cmpstr(opts_get(o, "file"), ==, "disk.img");
    g_assert_cmpstr(opts_get(o, "format"), ==, "raw");
    g_assert_cmpstr(opts_get(o, "if"), ==, "virtio");
    g_assert_true(opts_get_bool(o, "readonly", false, &err));
    g_assert_no_error(err);
    g_assert_true(opts_check_all_used(o, &err));
}

static void test_opts_escaped_comma(void)
{
    g_autoptr(OptList) o = opts_parse("file=a,,b.img,id=x", NULL, NULL);
    g_assert_cmpstr(opts_get(o, "file"), ==, "a,b.img");
    g_assert_cmpstr(opts_get(o, "id"), ==, "x");
}

static void test_opts_unused_named(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(OptList) o = opts_parse("file=x,colour=red", NULL, NULL);
    opts_get(o, "file");
    g_assert_false(opts_check_all_used(o, &err));
    g_assert_cmpstr(err->message, ==, "Invalid parameter 'colour'");
}

static void test_opts_bad_bool_and_size(void)
{
    g_autoptr(GError) e1 = NULL;
    g_autoptr(GError) e2 = NULL;
    uint64_t size;
    g_autoptr(OptList) o = opts_parse("share=maybe,size=12Q", NULL, NULL);
    opts_get_bool(o, "share", false, &e1);
    g_assert_nonnull(e1);
    g_assert_nonnull(strstr(e1->message, "'share' expects 'on' or 'off', not 'maybe'"));
    g_assert_false(opts_get_size(o, "size", 0, &size, &e2));
    g_assert_nonnull(strstr(e2->message, "'size' expects a size"));
}

static void test_opts_merge(void)
{
    g_autoptr(OptList) a = opts_parse("pc,accel=kvm", "type", NULL);
    g_autoptr(OptList) b = opts_parse("memory-backend=m0,accel=tcg", "type", NULL);
    opts_merge(a, b);
    g_assert_cmpstr(opts_get(a, "type"), ==, "pc");
    g_assert_cmpstr(opts_get(a, "accel"), ==, "tcg");
    g_assert_cmpstr(opts_get(a, "memory-backend"), ==, "m0");
}

static void test_opts_no_prefix(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(OptList) o = opts_parse_ext("socket,path=/s,server,nowait,nodelay=on,no",
                                          "backend", OPTS_NO_PREFIX_IS_OFF, &err);
    g_assert_no_error(err);
    g_assert_cmpstr(opts_get(o, "backend"), ==, "socket");
    g_assert_true(opts_get_bool(o, "server", false, &err));
    g_assert_false(opts_get_bool(o, "wait", true, &err));
    g_assert_no_error(err);
    /* Only a bare word is rewritten; "nodelay=on" keeps its key. */
    g_assert_cmpstr(opts_get(o, "nodelay"), ==, "on");
    g_assert_false(opts_has(o, "delay"));
    /* "no" alone names nothing to turn off. */
    g_assert_cmpstr(opts_get(o, "no"), ==, "on");
    opts_get(o, "path");
    g_assert_true(opts_check_all_used(o, &err));

    /* The implied first element is a value even when it starts with "no". */
    g_autoptr(OptList) first = opts_parse_ext("none,noserver", "backend",
                                              OPTS_NO_PREFIX_IS_OFF, NULL);
    g_assert_cmpstr(opts_get(first, "backend"), ==, "none");
    g_assert_cmpstr(opts_get(first, "server"), ==, "off");
}

static void test_opts_no_prefix_needs_flag(void)
{
    /* Without the flag "nowait" is a key of its own ("node" must stay one). */
    g_autoptr(OptList) o = opts_parse("nowait,node", NULL, NULL);

    g_assert_cmpstr(opts_get(o, "nowait"), ==, "on");
    g_assert_cmpstr(opts_get(o, "node"), ==, "on");
    g_assert_false(opts_has(o, "wait"));
}

static void test_opts_new_set(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(OptList) o = opts_new();
    g_autoptr(OptList) extra = opts_parse_ext("path=/b,noserver", NULL,
                                              OPTS_NO_PREFIX_IS_OFF, NULL);

    g_assert_cmpuint(opts_count(o), ==, 0);
    opts_set(o, "id", "serial0");
    opts_set(o, "path", "/a");
    opts_merge(o, extra);
    /* A replaced key keeps its place; new keys follow. */
    g_assert_cmpuint(opts_count(o), ==, 3);
    g_assert_cmpstr(opts_key_at(o, 0), ==, "id");
    g_assert_cmpstr(opts_key_at(o, 1), ==, "path");
    g_assert_cmpstr(opts_key_at(o, 2), ==, "server");
    g_assert_cmpstr(opts_get(o, "path"), ==, "/b");
    g_assert_false(opts_check_all_used(o, &err));
    g_assert_cmpstr(err->message, ==, "Invalid parameter 'id'");
}

static void test_parse_size(void)
{
    uint64_t v;
    g_assert_true(parse_size("512", 1 << 20, &v));
    g_assert_cmpuint(v, ==, 512ULL << 20);
    g_assert_true(parse_size("2G", 1, &v));
    g_assert_cmpuint(v, ==, 2ULL << 30);
    g_assert_true(parse_size("1.5G", 1, &v));
    g_assert_cmpuint(v, ==, 3ULL << 29);
    g_assert_true(parse_size("64k", 1, &v));
    g_assert_cmpuint(v, ==, 64ULL << 10);
    g_assert_true(parse_size("4096", 1, &v));
    g_assert_cmpuint(v, ==, 4096);
    g_assert_false(parse_size("", 1, &v));
    g_assert_false(parse_size("G", 1, &v));
    g_assert_false(parse_size("12Q", 1, &v));
    g_assert_false(parse_size("-1", 1, &v));
    g_assert_false(parse_size("99999999999999999999", 1, &v));
    g_assert_false(parse_size("17179869184G", 1, &v));     /* overflows 64 bits */
}

static FerryConfig *parse(const char *cmdline, GError **errp)
{
    g_auto(GStrv) argv = NULL;
    g_autofree char *full = g_strdup_printf("ferry %s", cmdline);
    g_assert_true(g_shell_parse_argv(full, NULL, &argv, NULL));
    return ferry_cmdline_parse((int)g_strv_length(argv), argv, errp);
}

static void test_cmdline_good(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(FerryConfig) cfg = parse("-enable-kvm --smp 4 -m 1G -name vm1 -S -no-reboot "
                                       "-kernel k -append 'a b' -serial stdio -serial null "
                                       "-qmp unix:/x,server=on,wait=off -qmp-pretty stdio "
                                       "-M pc -machine memory-backend=m", &err);
    g_assert_no_error(err);
    g_assert_cmpint(cfg->smp, ==, 4);
    g_assert_cmpuint(cfg->ram_size, ==, 1ULL << 30);
    g_assert_cmpstr(cfg->name, ==, "vm1");
    g_assert_true(cfg->start_paused);
    g_assert_true(cfg->no_reboot);
    g_assert_cmpstr(cfg->append, ==, "a b");
    g_assert_cmpuint(cfg->serials->len, ==, 2);
    g_assert_cmpuint(cfg->qmps->len, ==, 2);
    g_assert_true(((QmpSpec *)g_ptr_array_index(cfg->qmps, 1))->pretty);
    g_assert_cmpstr(g_ptr_array_index(cfg->accels, 0), ==, "kvm");
    g_assert_cmpstr(opts_get(cfg->machine, "type"), ==, "pc");
    g_assert_cmpstr(opts_get(cfg->machine, "memory-backend"), ==, "m");
}

static void test_cmdline_smp_forms(void)
{
    g_autoptr(FerryConfig) a = parse("-smp cpus=8", NULL);
    g_assert_cmpint(a->smp, ==, 8);
    g_autoptr(FerryConfig) b = parse("-smp sockets=2,cores=3", NULL);
    g_assert_cmpint(b->smp, ==, 6);
    g_autoptr(GError) err = NULL;
    g_autoptr(FerryConfig) c = parse("-smp 4,maxcpus=8", &err);
    g_assert_null(c);
    g_assert_nonnull(strstr(err->message, "-smp 4,maxcpus=8: CPU hotplug is not supported"));
}

static void test_cmdline_errors(void)
{
    static const char *const cases[][2] = {
        { "-bogus", "-bogus: invalid option" },
        { "--kernel", "--kernel: requires an argument" },
        { "-m 0", "-m 0: RAM size too small" },
        { "-m 1000x", "-m 1000x: Parameter 'size' expects a size" },
        { "-cpu host,+avx", "-cpu host,+avx: CPU feature '+avx'" },
        { "-display sdl", "-display sdl: Display 'sdl' is not available" },
        { "-accel kvm,foo=1", "-accel kvm,foo=1: Property 'kvm.foo' not found" },
        { "-name guest=a,color=b", "-name guest=a,color=b: Invalid parameter 'color'" },
    };
    for (unsigned i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(GError) err = NULL;
        g_autoptr(FerryConfig) cfg = parse(cases[i][0], &err);
        g_assert_null(cfg);
        if (!g_str_has_prefix(err->message, cases[i][1])) {
            g_printerr("%s -> %s\n", cases[i][0], err->message);
        }
        g_assert_true(g_str_has_prefix(err->message, cases[i][1]));
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/option/basic", test_opts_basic);
    g_test_add_func("/option/escaped-comma", test_opts_escaped_comma);
    g_test_add_func("/option/unused-named", test_opts_unused_named);
    g_test_add_func("/option/bad-bool-and-size", test_opts_bad_bool_and_size);
    g_test_add_func("/option/merge", test_opts_merge);
    g_test_add_func("/option/no-prefix", test_opts_no_prefix);
    g_test_add_func("/option/no-prefix-needs-flag", test_opts_no_prefix_needs_flag);
    g_test_add_func("/option/new-set", test_opts_new_set);
    g_test_add_func("/option/parse-size", test_parse_size);
    g_test_add_func("/cmdline/good", test_cmdline_good);
    g_test_add_func("/cmdline/smp-forms", test_cmdline_smp_forms);
    g_test_add_func("/cmdline/errors", test_cmdline_errors);
    return g_test_run();
}
