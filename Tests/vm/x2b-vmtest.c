// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * x2b-vmtest: phase A of the defer-connect module's VM tests (static binary,
 * runs as /init's child inside the guest).
 *
 *   x2b-vmtest phase-a OBJ CGROUP
 *       Starts echo backends (127.0.0.1 and ::1, ports 9001..9005), loads OBJ
 *       (Tests/vm/bpf/defer_test.bpf.c), attaches its connect4/connect6
 *       programs to CGROUP, joins it and runs the cases.  Prints
 *       "X2B-TEST <name> PASS|FAIL ..." per case and "X2B-PHASE-A PASS|FAIL".
 *   x2b-vmtest serve [--ready FILE] ADDR:PORT...
 *       The echo backend alone (used by phase B's scripts).
 *   x2b-vmtest get ADDR PORT PATH [HEADER...]
 *       One request through the cgroup the caller is in; prints the backend
 *       letter or port that answered.
 *
 * Backend protocol: read the request head and Content-Length body, answer
 * "HTTP/1.1 200 OK", "X-Backend: <A-E>" (local port 9001..9005; other ports
 * answer their number) and echo every byte received, then close.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#ifndef TCP_ULP
#define TCP_ULP 31
#endif
#ifndef MSG_FASTOPEN
#define MSG_FASTOPEN 0x20000000
#endif

#define MODNAME "xds2bpf_defer"
#define STATS "/sys/kernel/debug/" MODNAME "/stats"
#define HEAD_MAX 4096 /* X2B_HEAD_MAX */

static int failures;
static int passes;
static const char *current_case = "setup";

static void on_alarm(int sig)
{
	(void)sig;
	printf("X2B-TEST %s FAIL watchdog: no progress in 30 s\nX2B-PHASE-A FAIL watchdog\n", current_case);
	fflush(stdout);
	_exit(3);
}

/* Names the case in progress and restarts the watchdog. */
static void begin(const char *name)
{
	current_case = name;
	alarm(30);
}

static void result(const char *name, bool ok, const char *fmt, ...)
{
	va_list ap;

	printf("X2B-TEST %s %s", name, ok ? "PASS" : "FAIL");
	if (fmt && *fmt) {
		printf(" ");
		va_start(ap, fmt);
		vprintf(fmt, ap);
		va_end(ap);
	}
	printf("\n");
	fflush(stdout);
	if (ok)
		passes++;
	else
		failures++;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void msleep(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* ---------------- addresses ---------------- */

struct addr {
	struct sockaddr_storage ss;
	socklen_t len;
};

static int mkaddr(struct addr *a, const char *host, int port)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)&a->ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a->ss;

	memset(a, 0, sizeof(*a));
	if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		a->len = sizeof(*s4);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		a->len = sizeof(*s6);
		return 0;
	}
	return -1;
}

static int parse_hostport(struct addr *a, const char *s)
{
	char host[128];
	const char *colon = strrchr(s, ':');
	size_t n;

	if (!colon)
		return -1;
	n = colon - s;
	if (s[0] == '[' && n >= 2 && s[n - 1] == ']') {
		s++;
		n -= 2;
	}
	if (n >= sizeof(host))
		return -1;
	memcpy(host, s, n);
	host[n] = 0;
	return mkaddr(a, host, atoi(colon + 1));
}

/* ---------------- echo backend ---------------- */

/* --ident: answer each connection with the listener's own "ip:port" line and close (multibackend.py) */
static bool serve_ident;
/* --http-ident: read the request, answer 200 with the listener's "ip:port" as body */
static bool serve_http_ident;
static char ident_of[64][80];

struct conn {
	int fd;
	int port;
	const char *ident;
	char *buf;
	size_t len, cap, need;	/* need: total request bytes once the head is parsed */
	char *out;
	size_t olen, ooff;
};

static int listen_on(const struct addr *a)
{
	int one = 1;
	int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN, &(int){ 64 }, sizeof(int));
	if (a->ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)&a->ss, a->len) || listen(fd, 1024)) {
		close(fd);
		return -1;
	}
	return fd;
}

static size_t request_need(const char *buf, size_t len)
{
	const char *end = memmem(buf, len, "\r\n\r\n", 4);
	size_t head, body = 0;
	const char *p;

	if (!end)
		return 0;
	head = end - buf + 4;
	for (p = buf; p && p < end; p = memchr(p, '\n', end - p)) {
		if (*p == '\n')
			p++;
		if (!strncasecmp(p, "content-length:", 15)) {
			body = strtoul(p + 15, NULL, 10);
			break;
		}
	}
	return head + body;
}

static void conn_respond(struct conn *c)
{
	char hdr[160];
	int port = c->port;
	char who[16];
	int h;

	if (serve_http_ident) {
		const char *id = c->ident;
		size_t n = strlen(id);

		h = snprintf(hdr, sizeof(hdr),
			     "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n", n);
		c->out = malloc(h + n);
		memcpy(c->out, hdr, h);
		memcpy(c->out + h, id, n);
		c->olen = h + n;
		c->ooff = 0;
		return;
	}
	if (port >= 9001 && port <= 9005)
		snprintf(who, sizeof(who), "%c", 'A' + port - 9001);
	else
		snprintf(who, sizeof(who), "%d", port);
	h = snprintf(hdr, sizeof(hdr),
		     "HTTP/1.1 200 OK\r\nX-Backend: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
		     who, c->len);
	c->out = malloc(h + c->len);
	memcpy(c->out, hdr, h);
	memcpy(c->out + h, c->buf, c->len);
	c->olen = h + c->len;
	c->ooff = 0;
}

static void conn_free(struct conn *c)
{
	close(c->fd);
	free(c->buf);
	free(c->out);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

static volatile sig_atomic_t serve_stop;

static void on_term(int sig)
{
	(void)sig;
	serve_stop = 1;
}

#define MAXC 4096

static int serve(struct addr *addrs, int naddrs, const char *ready)
{
	static struct conn conns[MAXC];
	static struct pollfd pfd[MAXC + 64];
	int lfd[64], lport[64];
	int i, n;

	signal(SIGTERM, on_term);
	signal(SIGPIPE, SIG_IGN);
	for (i = 0; i < naddrs; i++) {
		lfd[i] = listen_on(&addrs[i]);
		lport[i] = ntohs(((struct sockaddr_in *)&addrs[i].ss)->sin_port);
		{
			char h[INET6_ADDRSTRLEN];

			if (addrs[i].ss.ss_family == AF_INET6) {
				inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&addrs[i].ss)->sin6_addr, h, sizeof(h));
				snprintf(ident_of[i], sizeof(ident_of[i]), "[%s]:%d\n", h, lport[i]);
			} else {
				inet_ntop(AF_INET, &((struct sockaddr_in *)&addrs[i].ss)->sin_addr, h, sizeof(h));
				snprintf(ident_of[i], sizeof(ident_of[i]), "%s:%d\n", h, lport[i]);
			}
		}
		if (lfd[i] < 0) {
			fprintf(stderr, "serve: listen %d: %s\n", lport[i], strerror(errno));
			return 1;
		}
	}
	for (i = 0; i < MAXC; i++)
		conns[i].fd = -1;
	if (ready) {
		int fd = open(ready, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		if (fd >= 0) {
			if (write(fd, "ready\n", 6) < 0)
				perror("ready");
			close(fd);
		}
	}
	while (!serve_stop) {
		int map[MAXC + 64];

		n = 0;
		for (i = 0; i < naddrs; i++) {
			pfd[n].fd = lfd[i];
			pfd[n].events = POLLIN;
			map[n++] = -1 - i;
		}
		for (i = 0; i < MAXC; i++) {
			if (conns[i].fd < 0)
				continue;
			pfd[n].fd = conns[i].fd;
			pfd[n].events = conns[i].out ? POLLOUT : POLLIN;
			map[n++] = i;
		}
		if (poll(pfd, n, 500) < 0)
			continue;
		for (int k = 0; k < n; k++) {
			if (!pfd[k].revents)
				continue;
			if (map[k] < 0) {
				int li = -1 - map[k];

				for (;;) {
					int fd = accept4(lfd[li], NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
					int j;

					if (fd < 0)
						break;
					for (j = 0; j < MAXC && conns[j].fd >= 0; j++)
						;
					if (j == MAXC) {
						close(fd);
						continue;
					}
					conns[j].fd = fd;
					conns[j].port = lport[li];
					conns[j].ident = ident_of[li];
					if (serve_ident) {
						size_t n = strlen(ident_of[li]);

						conns[j].out = malloc(n);
						memcpy(conns[j].out, ident_of[li], n);
						conns[j].olen = n;
						conns[j].ooff = 0;
					}
				}
				continue;
			}
			struct conn *c = &conns[map[k]];

			if (c->out) {
				ssize_t w = write(c->fd, c->out + c->ooff, c->olen - c->ooff);

				if (w > 0)
					c->ooff += w;
				if ((w < 0 && errno != EAGAIN) || c->ooff == c->olen)
					conn_free(c);
				continue;
			}
			for (;;) {
				ssize_t r;

				if (c->cap - c->len < 65536) {
					c->cap = c->cap ? c->cap * 2 : 131072;
					c->buf = realloc(c->buf, c->cap);
				}
				r = read(c->fd, c->buf + c->len, c->cap - c->len);
				if (r > 0) {
					c->len += r;
					if (!c->need)
						c->need = request_need(c->buf, c->len);
					if (c->need && c->len >= c->need) {
						conn_respond(c);
						break;
					}
					continue;
				}
				if (r == 0 || errno != EAGAIN)
					conn_free(c);	/* EOF or reset before a full request */
				break;
			}
		}
	}
	return 0;
}

static pid_t start_backends(void)
{
	static const char *hosts[] = { "127.0.0.1", "::1" };
	struct addr addrs[10];
	char ready[] = "/tmp/x2b-backends.ready";
	pid_t pid;
	int i, n = 0;

	for (i = 0; i < 2; i++)
		for (int p = 9001; p <= 9005; p++)
			mkaddr(&addrs[n++], hosts[i], p);
	unlink(ready);
	pid = fork();
	if (pid == 0)
		_exit(serve(addrs, n, ready));
	for (i = 0; i < 200 && access(ready, F_OK); i++)
		msleep(10);
	return pid;
}

/* ---------------- client helpers ---------------- */

static int vsocket(int family, bool nonblock)
{
	return socket(family, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
}

static int vconnect(const char *host, int port, bool nonblock, int *err)
{
	struct addr a;
	int fd;

	mkaddr(&a, host, port);
	fd = vsocket(a.ss.ss_family, nonblock);
	if (fd < 0)
		return -1;
	*err = connect(fd, (struct sockaddr *)&a.ss, a.len) ? errno : 0;
	return fd;
}

static void set_rcvtimeo(int fd, int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static int tcp_state(int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len))
		return -1;
	return ti.tcpi_state;
}

static void tcp_ulp(int fd, char *buf, size_t size)
{
	socklen_t len = size - 1;

	buf[0] = 0;
	if (!getsockopt(fd, IPPROTO_TCP, TCP_ULP, buf, &len))
		buf[len] = 0;
}

static long snmp_tcp(const char *field)
{
	char names[1024], vals[1024], line[1024];
	FILE *f = fopen("/proc/net/snmp", "r");
	long v = -1;

	if (!f)
		return -1;
	names[0] = vals[0] = 0;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "Tcp:", 4))
			continue;
		if (!names[0])
			strcpy(names, line);
		else
			strcpy(vals, line);
	}
	fclose(f);
	char *sn, *sv, *n = strtok_r(names, " \n", &sn), *val = strtok_r(vals, " \n", &sv);

	while (n && val) {
		if (!strcmp(n, field)) {
			v = atol(val);
			break;
		}
		n = strtok_r(NULL, " \n", &sn);
		val = strtok_r(NULL, " \n", &sv);
	}
	return v;
}

static long mod_stat(const char *name)
{
	char line[128];
	FILE *f = fopen(STATS, "r");
	long v = -1;
	size_t n = strlen(name);

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, name, n) && line[n] == ' ')
			v = atol(line + n + 1);
	fclose(f);
	return v;
}

static int send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0)
			return -errno;
		p += w;
		n -= w;
	}
	return 0;
}

/* Reads the response until EOF; checks the echo.  Returns the backend id or NULL. */
static const char *read_response(int fd, const char *req, size_t reqlen, char *why, size_t whysz)
{
	static char who[16];
	size_t cap = reqlen + 4096, len = 0;
	char *buf = malloc(cap);
	const char *end, *b;
	ssize_t r;

	for (;;) {
		if (len == cap) {
			cap *= 2;
			buf = realloc(buf, cap);
		}
		r = recv(fd, buf + len, cap - len, 0);
		if (r > 0) {
			len += r;
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		break;
	}
	if (r < 0) {
		snprintf(why, whysz, "recv: %s after %zu bytes", strerror(errno), len);
		free(buf);
		return NULL;
	}
	end = memmem(buf, len, "\r\n\r\n", 4);
	b = memmem(buf, len, "X-Backend: ", 11);
	if (!end || !b || b > end) {
		snprintf(why, whysz, "bad response (%zu bytes)", len);
		free(buf);
		return NULL;
	}
	sscanf(b + 11, "%15[^\r]", who);
	end += 4;
	if ((size_t)(buf + len - end) != reqlen || memcmp(end, req, reqlen)) {
		snprintf(why, whysz, "echo differs: sent %zu, backend %s got %zu", reqlen, who,
			 (size_t)(buf + len - end));
		free(buf);
		return NULL;
	}
	free(buf);
	return who;
}

static char *mkreq(const char *method, const char *path, const char *hdrs, size_t bodylen,
		   size_t *outlen)
{
	size_t cap = 512 + strlen(hdrs) + bodylen;
	char *r = malloc(cap);
	int h = snprintf(r, cap, "%s %s HTTP/1.1\r\n%s%sContent-Length: %zu\r\n\r\n", method, path,
			 strcasestr(hdrs, "host:") ? "" : "Host: svc.test\r\n", hdrs, bodylen);

	for (size_t i = 0; i < bodylen; i++)
		r[h + i] = "0123456789abcdefghijklmnopqrstuvwxyz"[(i * 7 + i / 13) % 36];
	*outlen = h + bodylen;
	return r;
}

/* One blocking request to host:port; the answering backend or NULL (why). */
static const char *exchange(const char *host, int port, const char *req, size_t len, char *why,
			    size_t whysz)
{
	int err, fd = vconnect(host, port, false, &err);
	const char *who;

	if (fd < 0 || err) {
		snprintf(why, whysz, "connect: %s", strerror(err));
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	set_rcvtimeo(fd, 5000);
	err = send_all(fd, req, len);
	if (err) {
		snprintf(why, whysz, "send: %s", strerror(-err));
		close(fd);
		return NULL;
	}
	who = read_response(fd, req, len, why, whysz);
	close(fd);
	return who;
}

static void expect_route(const char *name, const char *host, int port, const char *path,
			 const char *hdrs, size_t body, const char *want)
{
	char why[256] = "";
	size_t len;
	char *req = mkreq(body ? "POST" : "GET", path, hdrs, body, &len);
	const char *who = exchange(host, port, req, len, why, sizeof(why));

	if (!who)
		result(name, false, "%s", why);
	else
		result(name, !strcmp(who, want), "backend %s (want %s), %zu bytes echoed", who, want, len);
	free(req);
}

/* ---------------- BPF ---------------- */

static struct bpf_object *obj;
static struct bpf_link *links[2];
static int stat_fd = -1;

struct tstat {
	uint64_t first, rerun, defer_err;
	int64_t last_err;
	uint64_t last_len, last_flags, rerun_defer;
	int32_t method_len, path_len, host_len, hdr_len;
	char method[16], path[32], host[32], hdr[32];
};

static struct tstat tstat(void)
{
	struct tstat s = {};
	uint32_t zero = 0;

	bpf_map_lookup_elem(stat_fd, &zero, &s);
	return s;
}

static int bpf_setup(const char *path, const char *cgroup)
{
	struct bpf_program *prog;
	int cg, i = 0;
	char buf[32];
	FILE *f;

	obj = bpf_object__open_file(path, NULL);
	if (!obj || libbpf_get_error(obj)) {
		fprintf(stderr, "open %s failed\n", path);
		return -1;
	}
	if (bpf_object__load(obj)) {
		fprintf(stderr, "load %s failed\n", path);
		return -1;
	}
	stat_fd = bpf_map__fd(bpf_object__find_map_by_name(obj, "t_stat"));
	cg = open(cgroup, O_RDONLY | O_DIRECTORY);
	if (cg < 0) {
		perror(cgroup);
		return -1;
	}
	bpf_object__for_each_program(prog, obj) {
		links[i] = bpf_program__attach_cgroup(prog, cg);
		if (libbpf_get_error(links[i])) {
			fprintf(stderr, "attach %s failed\n", bpf_program__name(prog));
			return -1;
		}
		i++;
	}
	close(cg);
	snprintf(buf, sizeof(buf), "%s/cgroup.procs", cgroup);
	f = fopen(buf, "w");
	if (!f || fprintf(f, "%d\n", getpid()) < 0 || fclose(f)) {
		perror("join cgroup");
		return -1;
	}
	return 0;
}

static void bpf_detach(void)
{
	for (int i = 0; i < 2; i++) {
		if (links[i])
			bpf_link__destroy(links[i]);
		links[i] = NULL;
	}
}

static int delete_module(const char *name)
{
	return syscall(SYS_delete_module, name, O_NONBLOCK) ? errno : 0;
}

static int head_wait_ms(void)
{
	FILE *f = fopen("/sys/module/" MODNAME "/parameters/head_wait_ms", "r");
	int v = 200;

	if (f) {
		if (fscanf(f, "%d", &v) != 1)
			v = 200;
		fclose(f);
	}
	return v;
}

static long module_refcnt(void)
{
	FILE *f = fopen("/sys/module/" MODNAME "/refcnt", "r");
	long v = -1;

	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

/* ---------------- cases ---------------- */

static void t_deferred_no_syn(void)
{
	struct addr w;
	int wfd, err, fd, st, acc;
	long opens0, opens1, opens2;
	char ulp[32], why[256] = "";
	size_t len;
	char *req = mkreq("GET", "/a", "", 0, &len);
	const char *who;

	/* a real listener at the deferred address: nothing may reach it */
	mkaddr(&w, "127.0.0.1", 9100);
	wfd = listen_on(&w);
	opens0 = snmp_tcp("ActiveOpens");
	fd = vconnect("127.0.0.1", 9100, false, &err);
	st = tcp_state(fd);
	tcp_ulp(fd, ulp, sizeof(ulp));
	msleep(50);
	opens1 = snmp_tcp("ActiveOpens");
	acc = accept(wfd, NULL, NULL);
	result("connect-returns-0", err == 0, "connect: %s", strerror(err));
	result("no-syn-before-send", opens1 == opens0 && acc < 0 && errno == EAGAIN,
	       "ActiveOpens %ld -> %ld, listener accept: %s", opens0, opens1,
	       acc < 0 ? strerror(errno) : "got a connection");
	result("deferred-state", st == 2 /* SYN_SENT */ && !strcmp(ulp, "x2b_defer"),
	       "tcp state %d, ulp '%s'", st, ulp);
	{
		/* (a blocking second connect() waits, as on a TFO deferred socket) */
		int fl = fcntl(fd, F_GETFL), e2;

		fcntl(fd, F_SETFL, fl | O_NONBLOCK);
		e2 = connect(fd, (struct sockaddr *)&w.ss, w.len) ? errno : 0;
		fcntl(fd, F_SETFL, fl);
		result("second-connect-eisconn", e2 == EISCONN, "non-blocking connect() again: %s", strerror(e2));
	}
	set_rcvtimeo(fd, 5000);
	err = send_all(fd, req, len);
	who = err ? NULL : read_response(fd, req, len, why, sizeof(why));
	opens2 = snmp_tcp("ActiveOpens");
	acc = accept(wfd, NULL, NULL);
	result("routed-at-first-send", who && !strcmp(who, "A") && opens2 == opens1 + 1 && acc < 0,
	       "backend %s, ActiveOpens +%ld, original destination %s %s", who ? who : "-",
	       opens2 - opens1, acc < 0 ? "untouched" : "was connected", who ? "" : why);
	{
		struct tstat s = tstat();

		result("rerun-sees-head", s.last_len == len && (s.last_flags & 1) && s.rerun_defer > 0,
		       "head %llu bytes (sent %zu), flags %#llx, defer in re-run -EALREADY x%llu",
		       (unsigned long long)s.last_len, len, (unsigned long long)s.last_flags,
		       (unsigned long long)s.rerun_defer);
	}
	close(fd);
	if (acc >= 0)
		close(acc);
	close(wfd);
	free(req);
}

static void t_routes(void)
{
	expect_route("route-path-a", "10.0.0.80", 80, "/a/x", "", 0, "A");
	expect_route("route-path-b", "10.0.0.80", 80, "/b?q=1", "", 0, "B");
	expect_route("route-host-c", "10.0.0.80", 80, "/", "host: C.example\r\n", 0, "C");
	expect_route("route-header-d", "10.0.0.80", 80, "/", "X-Backend: d\r\n", 0, "D");
	expect_route("route-default-e", "10.0.0.80", 80, "/zzz", "", 0, "E");
	expect_route("route-post-body", "10.0.0.80", 80, "/b/upload", "", 200000, "B");
	expect_route("l4-not-deferred", "10.0.0.80", 81, "/a", "", 0, "E");
	expect_route("ipv6-path-a", "fd00::80", 80, "/a", "", 0, "A");
	expect_route("ipv6-header-d", "fd00::80", 80, "/", "x-backend: d\r\n", 1000, "D");
	expect_route("ipv4-mapped-b", "::ffff:10.0.0.80", 80, "/b", "", 0, "B");
}

/* The parsing kfuncs (bpf_x2b_field, bpf_x2b_header) as the program saw them. */
static void t_parse(void)
{
	static const struct {
		const char *name, *req, *want, *method, *path, *host, *hdr;
	} cases[] = {
		{ "parse-fields",
		  "PUT /zz/x?q=1 HTTP/1.1\r\nHost:  C.Example \r\nX-Backend: d\r\nx-backend:\te\r\nContent-Length: 0\r\n\r\n",
		  "C", "PUT", "/zz/x?q=1", "C.Example", "d,e" },
		{ "parse-absolute-form",
		  "GET http://c.example/p?x HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
		  "C", "GET", "/p?x", "c.example", "" },
		{ "parse-header-joined",
		  "GET /q HTTP/1.1\r\nHost: h\r\nX-Backend: d\r\nX-Backend: d\r\nContent-Length: 0\r\n\r\n",
		  "E", "GET", "/q", "h", "d,d" },
		{ "parse-header-single",
		  "DELETE /q HTTP/1.1\r\nHost: h\r\nx-BACKEND:   d  \r\nContent-Length: 0\r\n\r\n",
		  "D", "DELETE", "/q", "h", "d" },
		{ "route-scan-d",
		  "GET /q HTTP/1.1\r\nHost: h\r\nX-Scan: d\r\nContent-Length: 0\r\n\r\n",
		  "D", "GET", "/q", "h", "" },
	};

	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		char why[256] = "";
		size_t len = strlen(cases[k].req);
		const char *who = exchange("10.0.0.80", 80, cases[k].req, len, why, sizeof(why));
		struct tstat t = tstat();
		char m[17], pa[33], h[33], hd[33];
		bool ok;

		snprintf(m, sizeof(m), "%.*s", t.method_len > 0 ? t.method_len : 0, t.method);
		snprintf(pa, sizeof(pa), "%.*s", t.path_len > 0 ? t.path_len : 0, t.path);
		snprintf(h, sizeof(h), "%.*s", t.host_len > 0 ? t.host_len : 0, t.host);
		snprintf(hd, sizeof(hd), "%.*s", t.hdr_len > 0 ? t.hdr_len : 0, t.hdr);
		ok = who && !strcmp(who, cases[k].want) && !strcmp(m, cases[k].method) &&
		     !strcmp(pa, cases[k].path) && !strcmp(h, cases[k].host) && !strcmp(hd, cases[k].hdr) &&
		     (*cases[k].hdr || t.hdr_len == -61 /* ENODATA */);
		result(cases[k].name, ok, "backend %s (want %s), method '%s' path '%s' host '%s' x-backend '%s' (%d) %s",
		       who ? who : "-", cases[k].want, m, pa, h, hd, t.hdr_len, who ? "" : why);
	}
}

static void t_big_head(void)
{
	char hdr[HEAD_MAX + 1100];
	char why[256] = "";
	size_t len;
	char *req;
	const char *who;
	struct tstat s;

	/* a head past HEAD_MAX: the program sees its first HEAD_MAX bytes, flagged truncated */
	memcpy(hdr, "X-Pad: ", 7);
	memset(hdr + 7, 'p', HEAD_MAX + 1000);
	memcpy(hdr + 7 + HEAD_MAX + 1000, "\r\n", 3);
	req = mkreq("GET", "/b", hdr, 10, &len);
	who = exchange("10.0.0.80", 80, req, len, why, sizeof(why));
	s = tstat();
	result("head-over-bound", who && !strcmp(who, "B") && s.last_len == HEAD_MAX && (s.last_flags & 2),
	       "backend %s, program saw %llu of %zu bytes, flags %#llx %s", who ? who : "-",
	       (unsigned long long)s.last_len, len, (unsigned long long)s.last_flags, who ? "" : why);
	free(req);
}

/*
 * Cookies of ~3 KB before the header that routes: past the old 1024-byte bound,
 * whole within HEAD_MAX, so the program sees the header and the head complete.
 */
static void t_cookie_head(void)
{
	char hdr[3400];
	char why[256] = "";
	size_t len, n = 0;
	char *req;
	const char *who;
	struct tstat s;

	for (int i = 0; i < 12; i++) {
		n += snprintf(hdr + n, sizeof(hdr) - n, "Cookie: session%d=", i);
		memset(hdr + n, 'c', 240);
		n += 240;
		n += snprintf(hdr + n, sizeof(hdr) - n, "\r\n");
	}
	snprintf(hdr + n, sizeof(hdr) - n, "X-Backend: d\r\n");
	req = mkreq("GET", "/q", hdr, 0, &len);
	who = exchange("10.0.0.80", 80, req, len, why, sizeof(why));
	s = tstat();
	result("head-3k-cookies", who && !strcmp(who, "D") && len > 3000 && s.last_len == len &&
	       (s.last_flags & 3) == 1 && s.hdr_len == 1,
	       "backend %s (want D), program saw %llu of %zu bytes, flags %#llx, x-backend %d %s",
	       who ? who : "-", (unsigned long long)s.last_len, len, (unsigned long long)s.last_flags,
	       s.hdr_len, who ? "" : why);
	free(req);
}

/* Sends @req in pieces cut at @cuts, @gap_ms apart. */
static void t_split(const char *name, const char *path, const int *cuts, int ncuts, int gap_ms,
		    const char *want, unsigned int want_flags)
{
	char why[256] = "";
	size_t len, off = 0;
	char *req = mkreq("POST", path, "", 64, &len);
	int err, fd = vconnect("10.0.0.80", 80, false, &err);
	const char *who = NULL;
	struct tstat s;

	set_rcvtimeo(fd, 5000);
	for (int i = 0; i <= ncuts && !err; i++) {
		size_t end = i < ncuts ? (size_t)cuts[i] : len;

		err = send_all(fd, req + off, end - off);
		off = end;
		if (gap_ms && i < ncuts)
			msleep(gap_ms);
	}
	if (!err)
		who = read_response(fd, req, len, why, sizeof(why));
	else
		snprintf(why, sizeof(why), "send: %s", strerror(-err));
	s = tstat();
	result(name, who && !strcmp(who, want) && (s.last_flags & want_flags) == want_flags,
	       "backend %s (want %s), head %llu bytes, flags %#llx %s", who ? who : "-", want,
	       (unsigned long long)s.last_len, (unsigned long long)s.last_flags, who ? "" : why);
	close(fd);
	free(req);
}

static void t_head_timeout(void)
{
	const char *part1 = "GET /a HTTP/1.1\r\nHost: t\r\n";
	const char *all = "GET /a HTTP/1.1\r\nHost: t\r\n\r\n";
	char why[256] = "";
	long to0 = mod_stat("timeouts");
	int err, fd = vconnect("10.0.0.80", 80, false, &err), st;
	const char *who = NULL;

	set_rcvtimeo(fd, 5000);
	send_all(fd, part1, strlen(part1));
	msleep(2 * head_wait_ms() + 200);
	st = tcp_state(fd);
	send_all(fd, "\r\n", 2);
	who = read_response(fd, all, strlen(all), why, sizeof(why));
	result("head-wait-timeout", who && !strcmp(who, "A") && st == 1 && mod_stat("timeouts") == to0 + 1,
	       "backend %s, state after wait %d (1=established), timeouts +%ld %s", who ? who : "-",
	       st, mod_stat("timeouts") - to0, who ? "" : why);
	close(fd);
}

static int wait_fd(int fd, short ev, int ms)
{
	struct pollfd p = { .fd = fd, .events = ev };

	if (poll(&p, 1, ms) <= 0)
		return 0;
	return p.revents;
}

/* Non-blocking client: connect, poll, send with EAGAIN retries, read. */
static void t_nonblocking(const char *name, const char *host, bool split)
{
	char why[256] = "";
	size_t len, off = 0;
	char *req = mkreq("POST", "/b", "", 100, &len);
	int err, fd = vconnect(host, 80, true, &err), ev, eagains = 0;
	size_t cut = split ? 20 : len;
	const char *who = NULL;
	double t0 = now_ms();

	ev = wait_fd(fd, POLLOUT, 1000);
	while (off < len && now_ms() - t0 < 5000) {
		size_t end = off < cut ? cut : len;
		ssize_t w = send(fd, req + off, end - off, MSG_NOSIGNAL);

		if (w > 0) {
			off += w;
			continue;
		}
		if (errno != EAGAIN) {
			snprintf(why, sizeof(why), "send: %s", strerror(errno));
			break;
		}
		eagains++;
		wait_fd(fd, POLLOUT, 1000);
	}
	if (off == len) {
		int fl = fcntl(fd, F_GETFL);

		fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
		set_rcvtimeo(fd, 5000);
		who = read_response(fd, req, len, why, sizeof(why));
	}
	result(name, err == 0 && (ev & POLLOUT) && who && !strcmp(who, "B"),
	       "connect %s, first poll %#x, EAGAIN x%d, backend %s %s", strerror(err), ev, eagains,
	       who ? who : "-", who ? "" : why);
	close(fd);
	free(req);
}

static void t_fastopen(void)
{
	char why[256] = "";
	size_t len;
	char *req = mkreq("GET", "/b", "", 0, &len);
	struct addr a;
	int fd;
	ssize_t w;
	const char *who = NULL;
	long fo0 = mod_stat("fastopen");

	mkaddr(&a, "10.0.0.80", 80);
	fd = vsocket(AF_INET, false);
	set_rcvtimeo(fd, 5000);
	w = sendto(fd, req, len, MSG_FASTOPEN | MSG_NOSIGNAL, (struct sockaddr *)&a.ss, a.len);
	if (w == (ssize_t)len)
		who = read_response(fd, req, len, why, sizeof(why));
	else
		snprintf(why, sizeof(why), "sendto: %zd %s", w, strerror(errno));
	result("msg-fastopen", who && !strcmp(who, "B") && mod_stat("fastopen") == fo0 + 1,
	       "backend %s %s", who ? who : "-", who ? "" : why);
	close(fd);
	free(req);

	/* MSG_FASTOPEN on a socket that connect() already deferred */
	req = mkreq("GET", "/a", "", 0, &len);
	{
		int err;

		fd = vconnect("10.0.0.80", 80, false, &err);
		set_rcvtimeo(fd, 5000);
		w = sendto(fd, req, len, MSG_FASTOPEN | MSG_NOSIGNAL, NULL, 0);
		who = w == (ssize_t)len ? read_response(fd, req, len, why, sizeof(why)) : NULL;
		result("msg-fastopen-after-connect", who && !strcmp(who, "A"), "backend %s %s",
		       who ? who : "-", who ? "" : why);
		close(fd);
	}
	free(req);
}

static long netstat_ext(const char *field)
{
	char names[4096], vals[4096], line[4096];
	FILE *f = fopen("/proc/net/netstat", "r");
	long v = -1;

	if (!f)
		return -1;
	names[0] = vals[0] = 0;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "TcpExt:", 7))
			continue;
		if (!names[0])
			strcpy(names, line);
		else
			strcpy(vals, line);
	}
	fclose(f);
	char *sn, *sv, *n = strtok_r(names, " \n", &sn), *val = strtok_r(vals, " \n", &sv);

	while (n && val) {
		if (!strcmp(n, field)) {
			v = atol(val);
			break;
		}
		n = strtok_r(NULL, " \n", &sn);
		val = strtok_r(NULL, " \n", &sv);
	}
	return v;
}

/* TCP_FASTOPEN_CONNECT: the routed connect may itself be a Fast Open one (data in the SYN). */
static void t_tfo_cookie(void)
{
	long fo0 = netstat_ext("TCPFastOpenActive");
	int bad = 0, eagains = 0;

	for (int round = 0; round < 4; round++) {
		char why[256] = "";
		size_t len, off = 0;
		char *req = mkreq("POST", round % 2 ? "/a" : "/b", "", 200, &len);
		bool nb = round >= 2;
		int fd = vsocket(AF_INET, nb);
		struct addr a;
		const char *who = NULL;
		double t0 = now_ms();

		setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN_CONNECT, &(int){ 1 }, sizeof(int));
		mkaddr(&a, "10.0.0.80", 80);
		if (connect(fd, (struct sockaddr *)&a.ss, a.len))
			bad++;
		/* round 3: the head in two sends (buffered part goes in the SYN) */
		while (off < len && now_ms() - t0 < 3000) {
			size_t end = round == 3 && off < 25 ? 25 : len;
			ssize_t w = send(fd, req + off, end - off, MSG_NOSIGNAL);

			if (w > 0) {
				off += w;
			} else if (errno == EAGAIN || errno == EINPROGRESS) {
				eagains++;
				wait_fd(fd, POLLOUT, 1000);
			} else {
				break;
			}
		}
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
		set_rcvtimeo(fd, 5000);
		if (off == len)
			who = read_response(fd, req, len, why, sizeof(why));
		if (!who || strcmp(who, round % 2 ? "A" : "B")) {
			printf("X2B-INFO tfo round %d: %s %s\n", round, who ? who : "-", why);
			bad++;
		}
		close(fd);
		free(req);
	}
	result("tcp-fastopen-connect", bad == 0 && netstat_ext("TCPFastOpenActive") > fo0,
	       "4 rounds, %d bad, %d EAGAIN/EINPROGRESS, TCPFastOpenActive +%ld", bad, eagains,
	       netstat_ext("TCPFastOpenActive") - fo0);
}

/*
 * A blocking sender flushing a buffered head while the handshake is slow (the
 * backend's accept queue is full: its first SYN is dropped, the retransmission
 * a second later gets in), and a second thread sending meanwhile: it must wait
 * for the flush, and the bytes arrive in order.
 */
struct slow_arg {
	int fd;
	const char *p;
	size_t n;
	int err;
	double t_done;
};

static void *slow_sender(void *a)
{
	struct slow_arg *s = a;

	s->err = -send_all(s->fd, s->p, s->n);
	s->t_done = now_ms();
	return NULL;
}

static void t_slow_handshake(void)
{
	const char *part1 = "POST /slow HTTP/1.1\r\n", *part2 = "Host: s\r\nContent-Length: 10\r\n\r\n",
		   *body = "0123456789";
	char all[128], got[256];
	struct slow_arg a1, a2;
	pthread_t t1, t2;
	struct addr la;
	int err, fd, lfd, filler, acc = -1;
	ssize_t r = 0, n;
	long drops0 = netstat_ext("ListenOverflows");
	double t0;

	snprintf(all, sizeof(all), "%s%s%s", part1, part2, body);
	mkaddr(&la, "127.0.0.1", 9007);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &(int){ 1 }, sizeof(int));
	if (bind(lfd, (struct sockaddr *)&la.ss, la.len) || listen(lfd, 0))
		perror("slow listener");
	filler = vconnect("127.0.0.1", 9007, false, &err);	/* fills the accept queue */

	fd = vconnect("10.0.0.80", 80, false, &err);
	set_rcvtimeo(fd, 8000);
	send_all(fd, part1, strlen(part1));	/* buffered */
	a1 = (struct slow_arg){ fd, part2, strlen(part2), 0, 0 };
	a2 = (struct slow_arg){ fd, body, strlen(body), 0, 0 };
	t0 = now_ms();
	pthread_create(&t1, NULL, slow_sender, &a1);	/* completes the head: routes, flushes, waits */
	msleep(100);
	pthread_create(&t2, NULL, slow_sender, &a2);	/* must wait for t1's flush */
	msleep(200);
	close(accept(lfd, NULL, NULL));			/* the filler: room for the retransmitted SYN */
	pthread_join(t1, NULL);
	pthread_join(t2, NULL);
	if (!a1.err && !a2.err) {
		acc = accept(lfd, NULL, NULL);
		set_rcvtimeo(acc, 3000);
		while ((size_t)r < strlen(all) && (n = recv(acc, got + r, sizeof(got) - 1 - r, 0)) > 0)
			r += n;
	}
	got[r > 0 ? r : 0] = 0;
	result("slow-handshake-two-senders",
	       /* both returned only once connected (the SYN retransmission comes after 1 s) */
	       !a1.err && !a2.err && a1.t_done - t0 > 500 && a2.t_done - t0 > 500 &&
	       !strcmp(got, all) && netstat_ext("ListenOverflows") > drops0,
	       "senders %s/%s after %.0f/%.0f ms (SYN dropped %ld times), backend got %zd bytes %s",
	       strerror(a1.err), strerror(a2.err), a1.t_done - t0, a2.t_done - t0,
	       netstat_ext("ListenOverflows") - drops0, r, strcmp(got, all) ? "differing" : "in order");
	close(fd);
	close(filler);
	if (acc >= 0)
		close(acc);
	close(lfd);
}

static void t_writev(void)
{
	const char *p1 = "GET /x HTTP/1.1\r\n", *p2 = "X-Backend: d\r\n", *p3 = "Content-Length: 3\r\n\r\nabc";
	struct iovec iov[3] = {
		{ (void *)p1, strlen(p1) }, { (void *)p2, strlen(p2) }, { (void *)p3, strlen(p3) },
	};
	char all[256], why[256] = "";
	int err, fd = vconnect("10.0.0.80", 80, false, &err);
	ssize_t w;
	const char *who = NULL;

	snprintf(all, sizeof(all), "%s%s%s", p1, p2, p3);
	set_rcvtimeo(fd, 5000);
	w = writev(fd, iov, 3);
	if (w == (ssize_t)strlen(all))
		who = read_response(fd, all, strlen(all), why, sizeof(why));
	else
		snprintf(why, sizeof(why), "writev: %zd %s", w, strerror(errno));
	result("writev", who && !strcmp(who, "D"), "backend %s %s", who ? who : "-", who ? "" : why);
	close(fd);
}

static void t_sendfile(void)
{
	char why[256] = "";
	size_t len;
	char *req = mkreq("POST", "/", "Host: c.example\r\n", 300000, &len);
	int err, fd, ffd = open("/tmp/x2b-req", O_RDWR | O_CREAT | O_TRUNC, 0600);
	off_t off = 0;
	ssize_t w = 0;
	const char *who = NULL;

	if (write(ffd, req, len) != (ssize_t)len)
		perror("write req");
	fd = vconnect("10.0.0.80", 80, false, &err);
	set_rcvtimeo(fd, 5000);
	while ((size_t)off < len) {
		w = sendfile(fd, ffd, &off, len - off);
		if (w <= 0)
			break;
	}
	if ((size_t)off == len)
		who = read_response(fd, req, len, why, sizeof(why));
	else
		snprintf(why, sizeof(why), "sendfile: %zd %s", w, strerror(errno));
	result("sendfile", who && !strcmp(who, "C"), "backend %s, %zu bytes %s", who ? who : "-", len,
	       who ? "" : why);
	close(fd);
	close(ffd);
	unlink("/tmp/x2b-req");
	free(req);
}

static void t_failures(void)
{
	size_t len;
	char *dead = mkreq("GET", "/dead", "", 0, &len), *deny;
	int err, fd = vconnect("10.0.0.80", 80, false, &err), e1, e2, ev;
	socklen_t sl = sizeof(int);
	int soerr = 0;

	set_rcvtimeo(fd, 5000);
	e1 = -send_all(fd, dead, len);
	e2 = -send_all(fd, dead, len);
	result("connect-refused-blocking", e1 == ECONNREFUSED && e2 == EPIPE,
	       "first send %s, second %s", strerror(e1), strerror(e2));
	close(fd);

	fd = vconnect("10.0.0.80", 80, true, &err);
	e1 = send(fd, dead, len, MSG_NOSIGNAL) < 0 ? errno : 0;
	ev = wait_fd(fd, POLLOUT, 2000);
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
	result("connect-refused-nonblocking", e1 == EAGAIN && (ev & POLLERR) && soerr == ECONNREFUSED,
	       "send %s, poll %#x, SO_ERROR %s", strerror(e1), ev, strerror(soerr));
	close(fd);
	free(dead);

	deny = mkreq("GET", "/deny", "", 0, &len);
	fd = vconnect("10.0.0.80", 80, false, &err);
	e1 = -send_all(fd, deny, len);
	result("program-refuses", e1 == EPERM, "send %s", strerror(e1));
	close(fd);
	free(deny);
}

static void t_close_before_send(void)
{
	long opens0 = snmp_tcp("ActiveOpens"), cd0 = mod_stat("closed_deferred");
	int err, fds[20];

	for (int i = 0; i < 20; i++)
		fds[i] = vconnect(i % 2 ? "fd00::80" : "10.0.0.80", 80, i % 3 == 0, &err);
	for (int i = 0; i < 20; i++)
		close(fds[i]);
	result("close-before-send", snmp_tcp("ActiveOpens") == opens0 &&
	       mod_stat("closed_deferred") == cd0 + 20,
	       "ActiveOpens +%ld, closed_deferred +%ld", snmp_tcp("ActiveOpens") - opens0,
	       mod_stat("closed_deferred") - cd0);
}

static void linger0(int fd)
{
	struct linger l = { 1, 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
}

static void t_resets(void)
{
	size_t len;
	char *req = mkreq("POST", "/a", "", 5000, &len);
	int err, bad = 0;

	for (int i = 0; i < 150; i++) {
		int fd = vconnect(i % 2 ? "10.0.0.80" : "fd00::80", 80, i % 4 == 1, &err);

		if (fd < 0) {
			bad++;
			continue;
		}
		switch (i % 3) {
		case 0:	/* reset a deferred socket */
			break;
		case 1:	/* reset after part of the head */
			if (send(fd, req, 10, MSG_NOSIGNAL) != 10)
				bad++;
			break;
		case 2:	/* reset right after the whole request */
			send(fd, req, len, MSG_NOSIGNAL);
			break;
		}
		linger0(fd);
		close(fd);
	}
	msleep(300);
	result("client-resets", bad == 0, "%d unexpected errors", bad);
	expect_route("after-resets", "10.0.0.80", 80, "/a", "", 0, "A");
	free(req);
}

struct cl {
	int fd;
	char *req;
	size_t len, off, cut;
	char want[2];
	int state;	/* 0 send, 1 recv, 2 done */
	char *rbuf;
	size_t rlen, rcap;
};

static void t_concurrent(int n, int partial_wait_ms)
{
	static const char *paths[] = { "/a", "/b", "/", "/", "/e" };
	static const char *hdrs[] = { "", "", "Host: c.example\r\n", "X-Backend: d\r\n", "" };
	struct cl *c = calloc(n, sizeof(*c));
	struct pollfd *p = calloc(n, sizeof(*p));
	int err, done = 0, bad = 0, left;
	double t0 = now_ms();

	for (int i = 0; i < n; i++) {
		int k = i % 5;

		c[i].req = mkreq("POST", paths[k], hdrs[k], (i * 37) % 3000, &c[i].len);
		c[i].want[0] = 'A' + k;
		c[i].cut = i % 6 == 5 ? 12 : c[i].len;	/* some heads in two sends */
		c[i].fd = vconnect(i % 4 == 3 ? "fd00::80" : "10.0.0.80", 80, true, &err);
		if (c[i].fd < 0 || err) {
			bad++;
			c[i].state = 2;
		}
	}
	if (partial_wait_ms) {
		/* every head incomplete at once: the module routes them all on its timer */
		long to0 = mod_stat("timeouts");
		int sent = 0;

		for (int i = 0; i < n; i++) {
			c[i].cut = c[i].len;
			/* routed on "POST /x HTTP/1.1\r\nHo": Host and X-Backend are not seen */
			if (i % 5 == 2 || i % 5 == 3)
				c[i].want[0] = 'E';
			if (c[i].state == 0 && send(c[i].fd, c[i].req, 20, MSG_NOSIGNAL) == 20) {
				c[i].off = 20;
				sent++;
			}
		}
		msleep(partial_wait_ms);
		{
			char name[48];

			snprintf(name, sizeof(name), "head-timeouts-%d", n);
			result(name, sent == n && mod_stat("timeouts") - to0 == n, "%d partial heads, timeouts +%ld",
			       sent, mod_stat("timeouts") - to0);
		}
	}
	left = n - bad;
	while (left > 0 && now_ms() - t0 < 30000) {
		for (int i = 0; i < n; i++) {
			p[i].fd = c[i].state == 2 ? -1 : c[i].fd;
			p[i].events = c[i].state == 0 ? POLLOUT : POLLIN;
			p[i].revents = 0;
		}
		if (poll(p, n, 1000) <= 0)
			continue;
		for (int i = 0; i < n; i++) {
			if (!p[i].revents)
				continue;
			if (c[i].state == 0) {
				size_t end;
				ssize_t w;
again:
				/*
				 * The rest of a split head follows at once: a pause longer
				 * than head_wait_ms would route it on its first part.
				 */
				end = c[i].off < c[i].cut ? c[i].cut : c[i].len;
				w = send(c[i].fd, c[i].req + c[i].off, end - c[i].off, MSG_NOSIGNAL);
				if (w > 0 && (c[i].off += w) == c[i].len)
					c[i].state = 1;
				else if (w > 0)
					goto again;
				else if (w < 0 && errno != EAGAIN) {
					if (bad++ < 5)
						printf("X2B-INFO client %d: send at %zu/%zu: %s\n", i, c[i].off, c[i].len,
						       strerror(errno));
					c[i].state = 2;
					left--;
				}
				continue;
			}
			if (c[i].rcap - c[i].rlen < 4096) {
				c[i].rcap = c[i].rcap ? c[i].rcap * 2 : 8192;
				c[i].rbuf = realloc(c[i].rbuf, c[i].rcap);
			}
			ssize_t r = recv(c[i].fd, c[i].rbuf + c[i].rlen, c[i].rcap - c[i].rlen, 0);

			if (r > 0) {
				c[i].rlen += r;
				continue;
			}
			if (r < 0 && errno == EAGAIN)
				continue;
			c[i].state = 2;
			left--;
			{
				const char *end = memmem(c[i].rbuf, c[i].rlen, "\r\n\r\n", 4);
				const char *b = memmem(c[i].rbuf, c[i].rlen, "X-Backend: ", 11);

				if (r == 0 && end && b && b[11] == c[i].want[0] &&
				    (size_t)(c[i].rbuf + c[i].rlen - end - 4) == c[i].len &&
				    !memcmp(end + 4, c[i].req, c[i].len)) {
					done++;
				} else {
					int e = r < 0 ? errno : 0;

					if (bad++ < 5)
						printf("X2B-INFO client %d: want %c, sent %zu/%zu (cut %zu), recv %zd (%s), got %zu bytes: %.60s\n",
						       i, c[i].want[0], c[i].off, c[i].len, c[i].cut, r, strerror(e),
						       c[i].rlen, c[i].rlen ? c[i].rbuf : "");
				}
			}
		}
	}
	for (int i = 0; i < n; i++) {
		if (c[i].fd >= 0)
			close(c[i].fd);
		free(c[i].req);
		free(c[i].rbuf);
	}
	free(c);
	free(p);
	{
		char name[32];

		snprintf(name, sizeof(name), "concurrent-%d%s", n, partial_wait_ms ? "-after-timeouts" : "");
		result(name, done == n, "%d routed and echoed, %d bad, %.0f ms", done, bad, now_ms() - t0);
	}
}

static void t_parallel_procs(int procs, int each)
{
	pid_t pids[16];
	int ok = 0;
	double t0 = now_ms();

	for (int p = 0; p < procs; p++) {
		pids[p] = fork();
		if (pids[p] == 0) {
			int bad = 0;

			for (int i = 0; i < each; i++) {
				char why[256];
				size_t len;
				char *req = mkreq("GET", (i + p) % 2 ? "/a" : "/b", "", i % 50, &len);
				const char *who = exchange((i % 3) ? "10.0.0.80" : "fd00::80", 80, req, len, why,
							   sizeof(why));

				if (!who || strcmp(who, (i + p) % 2 ? "A" : "B"))
					bad++;
				free(req);
			}
			_exit(bad ? 1 : 0);
		}
	}
	for (int p = 0; p < procs; p++) {
		int st;

		waitpid(pids[p], &st, 0);
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
			ok++;
	}
	result("parallel-processes", ok == procs, "%d/%d processes x %d requests ok, %.0f ms", ok, procs,
	       each, now_ms() - t0);
}

/* Module references: sockets only (program gone), then unload racing the last sockets. */
static void t_unload(void)
{
	enum { N4 = 60, N6 = 10 };
	struct addr w;
	int wfd, err, e, fds[N4 + N6], accs[N4], nacc = 0, intact = 0, v6err = 0;
	char *reqs[N4];
	size_t lens[N4];
	long ref = -1, live = -1;
	pid_t hammer;
	int hst = -1;
	double t0;

	for (int i = 0; i < 40 && (live = mod_stat("live")) != 0; i++)
		msleep(50);
	result("no-live-state-before-unload", live == 0, "live %ld", live);
	e = delete_module(MODNAME);
	result("rmmod-refused-while-attached", e == EWOULDBLOCK || e == EBUSY, "%s", strerror(e));

	mkaddr(&w, "127.0.0.1", 9100);
	wfd = listen_on(&w);
	for (int i = 0; i < N4; i++) {
		char hdr[32];

		snprintf(hdr, sizeof(hdr), "X-Id: %d\r\n", i);
		reqs[i] = mkreq("POST", "/a", hdr, 100 + i, &lens[i]);
		fds[i] = vconnect("127.0.0.1", 9100, false, &err);
		set_rcvtimeo(fds[i], 5000);
		if (i % 3 == 1)	/* part of the head: buffered in the module */
			send_all(fds[i], reqs[i], 10);
	}
	for (int i = 0; i < N6; i++)
		fds[N4 + i] = vconnect("fd00::80", 80, false, &err);

	/* no program any more: only the sockets hold the module */
	bpf_detach();
	bpf_object__close(obj);
	obj = NULL;
	for (int i = 0; i < 100 && (ref = module_refcnt()) != N4 + N6; i++)
		msleep(20);
	e = delete_module(MODNAME);
	result("rmmod-refused-while-sockets-use-it", (e == EWOULDBLOCK || e == EBUSY) && ref == N4 + N6,
	       "%s, refcnt %ld for %d sockets", strerror(e), ref, N4 + N6);

	/* a child tries to unload every 2 ms while the sockets finish */
	hammer = fork();
	if (hammer == 0) {
		/* the parent's sockets must not stay open in here */
		syscall(SYS_close_range, 3, ~0U, 0);
		for (int n = 1; n < 10000; n++) {
			if (!delete_module(MODNAME)) {
				printf("X2B-INFO rmmod succeeded at attempt %d\n", n);
				_exit(0);
			}
			usleep(2000);
		}
		_exit(1);
	}
	/* the re-run finds no program: the original destination, data unchanged */
	for (int i = 0; i < N4; i++)
		send_all(fds[i], reqs[i] + (i % 3 == 1 ? 10 : 0), lens[i] - (i % 3 == 1 ? 10 : 0));
	for (int i = 0; i < N6; i++) {
		e = -send_all(fds[N4 + i], "GET / HTTP/1.1\r\n\r\n", 18);
		v6err += e == ENETUNREACH;
	}
	t0 = now_ms();
	while (nacc < N4 && now_ms() - t0 < 5000) {
		int a = accept(wfd, NULL, NULL);

		if (a < 0) {
			msleep(5);
			continue;
		}
		accs[nacc++] = a;
	}
	for (int k = 0; k < nacc; k++) {
		char buf[2048];
		ssize_t r = 0, got;
		int id;

		fcntl(accs[k], F_SETFL, fcntl(accs[k], F_GETFL) & ~O_NONBLOCK);
		set_rcvtimeo(accs[k], 2000);
		while ((size_t)r < sizeof(buf) - 1 && (got = recv(accs[k], buf + r, sizeof(buf) - 1 - r, 0)) > 0) {
			r += got;
			buf[r] = 0;
			if (request_need(buf, r) && (size_t)r >= request_need(buf, r))
				break;
		}
		buf[r] = 0;
		if (sscanf(strstr(buf, "X-Id: ") ? strstr(buf, "X-Id: ") + 6 : "x", "%d", &id) == 1 &&
		    id >= 0 && id < N4 && (size_t)r == lens[id] && !memcmp(buf, reqs[id], r))
			intact++;
	}
	for (int i = 0; i < N4 + N6; i++)
		close(fds[i]);
	for (int k = 0; k < nacc; k++)
		close(accs[k]);
	close(wfd);
	for (int i = 0; i < N4; i++)
		free(reqs[i]);
	result("no-program-keeps-destination", intact == N4 && v6err == N6,
	       "%d/%d requests arrived unchanged at the original destination, %d/%d IPv6 ENETUNREACH",
	       intact, N4, v6err, N6);
	alarm(30);
	waitpid(hammer, &hst, 0);
	result("rmmod-once-sockets-gone", WIFEXITED(hst) && WEXITSTATUS(hst) == 0 &&
	       module_refcnt() < 0, "unloaded after %.0f ms", now_ms() - t0);
}

/* x2b-vmtest stress OBJ CGROUP ROUNDS: the concurrency cases again and again */
static int stress(const char *objpath, const char *cgroup, int rounds)
{
	struct rlimit rl = { 8192, 8192 };
	pid_t backends;

	setrlimit(RLIMIT_NOFILE, &rl);
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	backends = start_backends();
	if (bpf_setup(objpath, cgroup))
		return 1;
	signal(SIGALRM, on_alarm);
	for (int r = 0; r < rounds; r++) {
		begin("stress");
		t_concurrent(300, 0);
		t_parallel_procs(4, 50);
	}
	alarm(0);
	bpf_detach();
	kill(backends, SIGTERM);
	waitpid(backends, NULL, 0);
	printf("X2B-STRESS %s %d passed, %d failed\n", failures ? "FAIL" : "PASS", passes, failures);
	return failures ? 1 : 0;
}

static int phase_a(const char *objpath, const char *cgroup)
{
	struct rlimit rl = { 8192, 8192 };
	pid_t backends;
	double t0 = now_ms();

	setrlimit(RLIMIT_NOFILE, &rl);
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	{
		/* Fast Open for client and server (cookies on loopback) */
		FILE *f = fopen("/proc/sys/net/ipv4/tcp_fastopen", "w");

		if (f) {
			fputs("3\n", f);
			fclose(f);
		}
	}
	backends = start_backends();
	if (bpf_setup(objpath, cgroup)) {
		printf("X2B-PHASE-A FAIL setup\n");
		kill(backends, SIGTERM);
		return 1;
	}
	signal(SIGALRM, on_alarm);
	begin("deferred");
	t_deferred_no_syn();
	begin("routes");
	t_routes();
	begin("parse");
	t_parse();
	begin("big-head");
	t_big_head();
	t_cookie_head();
	{
		static const int c2[] = { 17 }, c3[] = { 5, 30, 52 }, cb[] = { 40 };

		begin("split");
		t_split("split-head-2", "/b", c2, 1, 20, "B", 0x5);
		t_split("split-head-4", "/a/x", c3, 3, 10, "A", 0x5);
		t_split("split-head-body", "/b", cb, 1, 0, "B", 0x1);
	}
	begin("head-timeout");
	t_head_timeout();
	begin("nonblocking");
	t_nonblocking("nonblocking", "10.0.0.80", false);
	t_nonblocking("nonblocking-split", "10.0.0.80", true);
	t_nonblocking("nonblocking-ipv6", "fd00::80", false);
	begin("fastopen");
	t_fastopen();
	begin("tfo-cookie");
	t_tfo_cookie();
	begin("slow-handshake");
	t_slow_handshake();
	begin("writev");
	t_writev();
	begin("sendfile");
	t_sendfile();
	begin("failures");
	t_failures();
	begin("close-before-send");
	t_close_before_send();
	begin("resets");
	t_resets();
	begin("concurrent");
	t_concurrent(300, 0);
	t_concurrent(200, 2 * head_wait_ms() + 500);
	begin("parallel");
	t_parallel_procs(4, 50);
	{
		struct tstat s = tstat();

		result("no-defer-errors", s.defer_err == 0, "first runs %llu, re-runs %llu, defer errors %llu (last %lld)",
		       (unsigned long long)s.first, (unsigned long long)s.rerun,
		       (unsigned long long)s.defer_err, (long long)s.last_err);
	}
	begin("unload");
	t_unload();
	alarm(0);
	kill(backends, SIGTERM);
	waitpid(backends, NULL, 0);
	printf("X2B-PHASE-A %s %d passed, %d failed, %.1f s\n", failures ? "FAIL" : "PASS", passes,
	       failures, (now_ms() - t0) / 1e3);
	return failures ? 1 : 0;
}

/* ---------------- small tools for phase B scripts ---------------- */

static int cmd_serve(int argc, char **argv)
{
	struct addr addrs[64];
	const char *ready = NULL;
	int n = 0;

	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--ready") && i + 1 < argc) {
			ready = argv[++i];
			continue;
		}
		if (!strcmp(argv[i], "--ident")) {
			serve_ident = true;
			continue;
		}
		if (!strcmp(argv[i], "--http-ident")) {
			serve_http_ident = true;
			continue;
		}
		if (n == 64 || parse_hostport(&addrs[n], argv[i])) {
			fprintf(stderr, "serve: bad address %s\n", argv[i]);
			return 2;
		}
		n++;
	}
	return serve(addrs, n, ready);
}

static int cmd_get(int argc, char **argv)
{
	char hdrs[2048] = "", why[256] = "";
	size_t len;
	char *req;
	const char *who;

	if (argc < 3)
		return 2;
	for (int i = 3; i < argc; i++) {
		strncat(hdrs, argv[i], sizeof(hdrs) - strlen(hdrs) - 3);
		strcat(hdrs, "\r\n");
	}
	req = mkreq("GET", argv[2], hdrs, 0, &len);
	who = exchange(argv[0], atoi(argv[1]), req, len, why, sizeof(why));
	if (!who) {
		printf("ERR %s\n", why);
		return 1;
	}
	printf("%s\n", who);
	return 0;
}

/* probe.py in C: x2b-vmtest probe [--cgroup DIR] [--peer] N DST...  ->  {dst: {reply: count}} */
struct tally {
	char key[96];
	int n;
};

static void tally_add(struct tally *t, int *nt, const char *key)
{
	for (int i = 0; i < *nt; i++) {
		if (!strcmp(t[i].key, key)) {
			t[i].n++;
			return;
		}
	}
	if (*nt < 64) {
		snprintf(t[*nt].key, sizeof(t[*nt].key), "%s", key);
		t[(*nt)++].n = 1;
	}
}

static void fmt_sockaddr(const struct sockaddr_storage *ss, char *out, size_t n)
{
	char h[INET6_ADDRSTRLEN];

	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, h, sizeof(h));
		snprintf(out, n, "[%s]:%d", h, ntohs(s6->sin6_port));
	} else {
		const struct sockaddr_in *s4 = (const void *)ss;

		inet_ntop(AF_INET, &s4->sin_addr, h, sizeof(h));
		snprintf(out, n, "%s:%d", h, ntohs(s4->sin_port));
	}
}

static void probe_once(const struct addr *a, bool peer, struct tally *t, int *nt)
{
	char buf[256], key[128];
	int fd = vsocket(a->ss.ss_family, true), err = 0;
	size_t len = 0;
	socklen_t sl = sizeof(err);

	if (connect(fd, (const struct sockaddr *)&a->ss, a->len) && errno != EINPROGRESS) {
		err = errno;
	} else if (!(wait_fd(fd, POLLOUT, 2000) & (POLLOUT | POLLERR | POLLHUP))) {
		tally_add(t, nt, "error: TimeoutError");
		close(fd);
		return;
	} else {
		getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl);
	}
	if (err) {
		snprintf(key, sizeof(key), "error: %s", strerrorname_np(err) ?: "?");
		tally_add(t, nt, key);
		close(fd);
		return;
	}
	if (peer) {
		struct sockaddr_storage ss;
		socklen_t pl = sizeof(ss);
		char p[96];

		if (!getpeername(fd, (struct sockaddr *)&ss, &pl)) {
			fmt_sockaddr(&ss, p, sizeof(p));
			snprintf(key, sizeof(key), "peer:%s", p);
			tally_add(t, nt, key);
		}
	}
	while (len < sizeof(buf) - 1 && (!len || buf[len - 1] != '\n')) {
		ssize_t r;

		if (!(wait_fd(fd, POLLIN, 2000) & (POLLIN | POLLHUP | POLLERR))) {
			tally_add(t, nt, "error: TimeoutError");
			close(fd);
			return;
		}
		r = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
		if (r <= 0) {
			if (r < 0) {
				snprintf(key, sizeof(key), "error: %s", strerrorname_np(errno) ?: "?");
				tally_add(t, nt, key);
				close(fd);
				return;
			}
			break;
		}
		len += r;
	}
	buf[len] = 0;
	while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' '))
		buf[--len] = 0;
	tally_add(t, nt, len ? buf : "error: empty reply");
	close(fd);
}

static int join_cgroup(const char *cg)
{
	char p[512];
	FILE *f;

	snprintf(p, sizeof(p), "%s/cgroup.procs", cg);
	f = fopen(p, "w");
	if (!f || fprintf(f, "%d\n", getpid()) < 0 || fclose(f)) {
		perror(p);
		return -1;
	}
	return 0;
}

static int cmd_probe(int argc, char **argv)
{
	bool peer = false;
	int i = 0, n;

	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--peer"))
			peer = true;
		else if (!strcmp(argv[i], "--cgroup") && i + 1 < argc && !join_cgroup(argv[i + 1]))
			i++;
		else
			return 2;
	}
	if (i >= argc)
		return 2;
	n = atoi(argv[i++]);
	printf("{");
	for (int d = i; d < argc; d++) {
		struct tally t[64];
		struct addr a;
		int nt = 0;

		if (parse_hostport(&a, argv[d])) {
			fprintf(stderr, "probe: bad destination %s\n", argv[d]);
			return 2;
		}
		for (int k = 0; k < n; k++)
			probe_once(&a, peer, t, &nt);
		printf("%s\"%s\": {", d > i ? ", " : "", argv[d]);
		for (int k = 0; k < nt; k++)
			printf("%s\"%s\": %d", k ? ", " : "", t[k].key, t[k].n);
		printf("}");
	}
	printf("}\n");
	return 0;
}

/*
 * x2b-vmtest hprobe [--cgroup DIR] N DST METHOD AUTHORITY PATH [NAME:VALUE...]
 * N HTTP/1.1 requests (one per connection) -> {reply: count}; the reply is the
 * body of a --http-ident backend ("ip:port") or "error: <ERRNO>".
 */
static int cmd_hprobe(int argc, char **argv)
{
	char req[16384];
	struct tally t[64];
	struct addr a;
	int i = 0, n, nt = 0, len;

	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--cgroup") && i + 1 < argc && !join_cgroup(argv[i + 1]))
			i++;
		else
			return 2;
	}
	if (argc - i < 5 || parse_hostport(&a, argv[i + 1]))
		return 2;
	n = atoi(argv[i]);
	len = snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: %s\r\n", argv[i + 2], argv[i + 4], argv[i + 3]);
	for (int k = i + 5; k < argc; k++) {
		const char *colon = strchr(argv[k], ':');

		if (!colon)
			return 2;
		len += snprintf(req + len, sizeof(req) - len, "%.*s: %s\r\n", (int)(colon - argv[k]), argv[k],
				colon + 1);
	}
	len += snprintf(req + len, sizeof(req) - len, "User-Agent: x2b-vmtest\r\nAccept: */*\r\n\r\n");
	if (len >= (int)sizeof(req))
		return 2;
	for (int k = 0; k < n; k++) {
		char buf[1024], key[128];
		size_t got = 0;
		int err, fd = vsocket(a.ss.ss_family, false);
		ssize_t r;
		const char *body;

		set_rcvtimeo(fd, 3000);
		err = connect(fd, (struct sockaddr *)&a.ss, a.len) ? errno : 0;
		if (!err)
			err = -send_all(fd, req, len);
		while (!err && got < sizeof(buf) - 1 && (r = recv(fd, buf + got, sizeof(buf) - 1 - got, 0)) != 0) {
			if (r < 0) {
				err = errno == EAGAIN ? ETIMEDOUT : errno;
				break;
			}
			got += r;
		}
		close(fd);
		if (err) {
			snprintf(key, sizeof(key), "error: %s", err == ETIMEDOUT ? "TimeoutError" : strerrorname_np(err) ?: "?");
			tally_add(t, &nt, key);
			continue;
		}
		buf[got] = 0;
		body = strstr(buf, "\r\n\r\n");
		if (!body || strncmp(buf, "HTTP/1.1 200", 12)) {
			tally_add(t, &nt, "error: bad response");
			continue;
		}
		body += 4;
		snprintf(key, sizeof(key), "%.*s", (int)strcspn(body, "\r\n"), body);
		tally_add(t, &nt, key);
	}
	printf("{");
	for (int k = 0; k < nt; k++)
		printf("%s\"%s\": %d", k ? ", " : "", t[k].key, t[k].n);
	printf("}\n");
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 5 && !strcmp(argv[1], "stress"))
		return stress(argv[2], argv[3], atoi(argv[4]));
	if (argc >= 4 && !strcmp(argv[1], "phase-a"))
		return phase_a(argv[2], argv[3]);
	if (argc >= 2 && !strcmp(argv[1], "serve"))
		return cmd_serve(argc - 2, argv + 2);
	if (argc >= 2 && !strcmp(argv[1], "hprobe"))
		return cmd_hprobe(argc - 2, argv + 2);
	if (argc >= 2 && !strcmp(argv[1], "probe"))
		return cmd_probe(argc - 2, argv + 2);
	if (argc >= 2 && !strcmp(argv[1], "get"))
		return cmd_get(argc - 2, argv + 2);
	fprintf(stderr, "usage: x2b-vmtest phase-a OBJ CGROUP | serve [--ident] [--ready F] ADDR:PORT... |\n"
		"       probe [--cgroup DIR] [--peer] N DST... | get HOST PORT PATH [HDR...] |\n"
		"       hprobe [--cgroup DIR] N DST METHOD AUTHORITY PATH [NAME:VALUE...]\n");
	return 2;
}
