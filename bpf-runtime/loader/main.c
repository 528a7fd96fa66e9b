// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* xds2bpf-loader: command table and option parsing. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "loader.h"

bool x2b_verbose;
bool x2b_json;

static void vmsg(const char *kind, const char *fmt, va_list ap)
{
	fprintf(stderr, "xds2bpf-loader: %s", kind);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void x2b_err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg("error: ", fmt, ap);
	va_end(ap);
}

void x2b_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg("warning: ", fmt, ap);
	va_end(ap);
}

void x2b_note(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg("", fmt, ap);
	va_end(ap);
}

int x2b_exit_for_errno(int err)
{
	if (err < 0)
		err = -err;
	return err == ENOMEM ? X2B_EXIT_INTERNAL : X2B_EXIT_REJECT;
}

bool x2b_fail_point(const char *name)
{
	const char *want = getenv("XDS2BPF_TEST_FAIL");

	if (!want || strcmp(want, name))
		return false;
	x2b_err("injected failure at '%s' (XDS2BPF_TEST_FAIL)", name);
	return true;
}

static const char usage_text[] =
	"Usage: xds2bpf-loader COMMAND [OPTIONS]\n"
	"\n"
	"Commands:\n"
	"  load BUNDLE --cgroup PATH [--name NAME]   check, load, fill maps, attach, pin\n"
	"  replace BUNDLE --name NAME                swap a loaded bundle for a new one atomically\n"
	"  update --name NAME DELTA [--json]         apply an endpoint-only change (EndpointDelta)\n"
	"                                            to a loaded bundle's maps in place\n"
	"  update-stream --name NAME                 the same for every delta framed on stdin, one\n"
	"                                            session (the node agent's co-process)\n"
	"  refresh --name NAME [--cluster C] [--watch]\n"
	"                                            look up the host names of DNS clusters again\n"
	"                                            and rewrite their rows in place; --watch: on\n"
	"                                            each cluster's refresh rate (or TTL) until\n"
	"                                            SIGTERM\n"
	"  unload --name NAME                        detach and remove every pin of a bundle\n"
	"  status [--name NAME] [--json]             list loaded bundles\n"
	"  stats --name NAME [--json | --format text|json|prometheus] [--textfile DIR]\n"
	"                                            counters per listener and cluster; Prometheus'\n"
	"                                            text format, or written to DIR/xds2bpf_NAME.prom\n"
	"                                            atomically (node_exporter's textfile collector)\n"
	"  verify BUNDLE [--verbose] [--json]        check and load into the kernel only\n"
	"\n"
	"Options:\n"
	"  -v, --verbose   libbpf messages and the whole verifier log on a rejection\n"
	"  -j, --json      JSON output (status, stats, verify, update)\n"
	"  -f, --format F  stats: text (default), json or prometheus\n"
	"  -t, --textfile DIR  stats: write the Prometheus text to DIR/xds2bpf_NAME.prom\n"
	"  -C, --cluster C     refresh: only the DNS cluster C\n"
	"  -w, --watch         refresh: keep resolving\n"
	"\n"
	"Environment:\n"
	"  XDS2BPF_BPFFS      pin directory (default " X2B_DEFAULT_BPFFS ")\n"
	"  XDS2BPF_STATE_DIR  state directory (default " X2B_DEFAULT_STATE ")\n"
	"  XDS2BPF_DEBUG      print libbpf debug messages\n"
	"\n"
	"Exit codes: 0 ok, 1 bundle or delta rejected or kernel refused, 2 usage error,\n"
	"3 internal error, 4 update: the delta cannot be applied in place (a full replace is needed).\n";

static int usage(const char *fmt, ...)
{
	va_list ap;

	if (fmt) {
		va_start(ap, fmt);
		vmsg("error: ", fmt, ap);
		va_end(ap);
		fprintf(stderr, "Run 'xds2bpf-loader help' for usage.\n");
	} else {
		fputs(usage_text, stdout);
	}
	return fmt ? X2B_EXIT_USAGE : X2B_EXIT_OK;
}

struct args {
	const char *bundle;
	const char *cgroup;
	const char *name;
	const char *format;
	const char *textfile;
	const char *cluster;
};

enum {
	ARG_BUNDLE = 1,
	ARG_CGROUP = 2,
	ARG_NAME = 4,
	ARG_JSON = 8,
	ARG_VERBOSE = 16,
	ARG_FORMAT = 32,
	ARG_TEXTFILE = 64,
	ARG_CLUSTER = 128,
	ARG_WATCH = 256,
	ARG_LAST = ARG_WATCH,
};

struct command {
	const char *name;
	unsigned int required;
	unsigned int allowed;
};

static const struct command commands[] = {
	{ "load", ARG_BUNDLE | ARG_CGROUP, ARG_BUNDLE | ARG_CGROUP | ARG_NAME | ARG_VERBOSE },
	{ "replace", ARG_BUNDLE | ARG_NAME, ARG_BUNDLE | ARG_NAME | ARG_VERBOSE },
	{ "update", ARG_BUNDLE | ARG_NAME, ARG_BUNDLE | ARG_NAME | ARG_JSON | ARG_VERBOSE },
	{ "update-stream", ARG_NAME, ARG_NAME | ARG_VERBOSE },
	{ "refresh", ARG_NAME, ARG_NAME | ARG_CLUSTER | ARG_WATCH | ARG_VERBOSE },
	{ "unload", ARG_NAME, ARG_NAME | ARG_VERBOSE },
	{ "status", 0, ARG_NAME | ARG_JSON | ARG_VERBOSE },
	{ "stats", ARG_NAME, ARG_NAME | ARG_JSON | ARG_VERBOSE | ARG_FORMAT | ARG_TEXTFILE },
	{ "verify", ARG_BUNDLE, ARG_BUNDLE | ARG_JSON | ARG_VERBOSE },
};

static const char *arg_text(const struct command *cmd, unsigned int a)
{
	switch (a) {
	case ARG_BUNDLE:
		return strcmp(cmd->name, "update") ? "BUNDLE" : "DELTA";
	case ARG_CGROUP:
		return "--cgroup";
	case ARG_NAME:
		return "--name";
	case ARG_JSON:
		return "--json";
	case ARG_FORMAT:
		return "--format";
	case ARG_TEXTFILE:
		return "--textfile";
	case ARG_CLUSTER:
		return "--cluster";
	case ARG_WATCH:
		return "--watch";
	default:
		return "--verbose";
	}
}

static int stats(const struct args *a)
{
	enum x2b_stats_format f = x2b_json ? X2B_STATS_JSON : X2B_STATS_TEXT;

	if (a->format) {
		if (!strcmp(a->format, "prometheus"))
			f = X2B_STATS_PROMETHEUS;
		else if (!strcmp(a->format, "json"))
			f = X2B_STATS_JSON;
		else if (!strcmp(a->format, "text"))
			f = X2B_STATS_TEXT;
		else
			return usage("unknown format '%s' (text, json or prometheus)", a->format);
		if (x2b_json && f != X2B_STATS_JSON)
			return usage("--json and --format %s contradict each other", a->format);
	}
	if (a->textfile) {
		if (a->format && f != X2B_STATS_PROMETHEUS)
			return usage("--textfile writes the Prometheus format, not %s", a->format);
		if (x2b_json)
			return usage("--textfile writes the Prometheus format, not JSON");
		f = X2B_STATS_PROMETHEUS;
	}
	return x2b_cmd_stats(a->name, f, a->textfile);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "cgroup", required_argument, NULL, 'c' },
		{ "name", required_argument, NULL, 'n' },
		{ "json", no_argument, NULL, 'j' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "format", required_argument, NULL, 'f' },
		{ "textfile", required_argument, NULL, 't' },
		{ "cluster", required_argument, NULL, 'C' },
		{ "watch", no_argument, NULL, 'w' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	const struct command *cmd = NULL;
	struct args a = {};
	unsigned int given = 0;
	int c;

	if (argc < 2)
		return usage("missing command");
	if (!strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))
		return usage(NULL);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			cmd = &commands[i];
	if (!cmd)
		return usage("unknown command '%s'", argv[1]);

	opterr = 0;
	optind = 2;
	while ((c = getopt_long(argc, argv, ":c:n:jvf:t:C:wh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			a.cgroup = optarg;
			given |= ARG_CGROUP;
			break;
		case 'n':
			a.name = optarg;
			given |= ARG_NAME;
			break;
		case 'j':
			x2b_json = true;
			given |= ARG_JSON;
			break;
		case 'v':
			x2b_verbose = true;
			given |= ARG_VERBOSE;
			break;
		case 'f':
			a.format = optarg;
			given |= ARG_FORMAT;
			break;
		case 't':
			a.textfile = optarg;
			given |= ARG_TEXTFILE;
			break;
		case 'C':
			a.cluster = optarg;
			given |= ARG_CLUSTER;
			break;
		case 'w':
			given |= ARG_WATCH;
			break;
		case 'h':
			return usage(NULL);
		case ':':
			return usage("option '%s' needs a value", argv[optind - 1]);
		default:
			return usage("unknown option '%s'", argv[optind - 1]);
		}
	}
	/* getopt_long permutes: the bundle may come before or after the options */
	if (optind < argc) {
		a.bundle = argv[optind++];
		given |= ARG_BUNDLE;
	}
	if (optind < argc)
		return usage("unexpected argument '%s'", argv[optind]);
	for (unsigned int bit = 1; bit <= ARG_LAST; bit <<= 1) {
		if ((cmd->required & bit) && !(given & bit))
			return usage("%s needs %s", cmd->name, arg_text(cmd, bit));
		if (!(cmd->allowed & bit) && (given & bit))
			return usage("%s does not take %s", cmd->name, arg_text(cmd, bit));
	}
	if (a.name && !x2b_name_valid(a.name))
		return usage("invalid name '%s' (letters, digits, '_', '-'; at most 64 characters)",
			     a.name);

	libbpf_set_print(x2b_libbpf_print);

	if (!strcmp(cmd->name, "load"))
		return x2b_cmd_load(a.bundle, a.cgroup, a.name);
	if (!strcmp(cmd->name, "replace"))
		return x2b_cmd_replace(a.bundle, a.name);
	if (!strcmp(cmd->name, "update"))
		return x2b_cmd_update(a.bundle, a.name);
	if (!strcmp(cmd->name, "update-stream"))
		return x2b_cmd_update_stream(a.name);
	if (!strcmp(cmd->name, "refresh"))
		return x2b_cmd_refresh(a.name, a.cluster, given & ARG_WATCH);
	if (!strcmp(cmd->name, "unload"))
		return x2b_cmd_unload(a.name);
	if (!strcmp(cmd->name, "status"))
		return x2b_cmd_status(a.name);
	if (!strcmp(cmd->name, "stats"))
		return stats(&a);
	return x2b_cmd_verify(a.bundle);
}
