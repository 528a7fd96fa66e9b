// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Closed-loop load client: CONNS connections in flight, each one a new TCP
 * connection carrying one small request/response (connect, write REQ bytes
 * ending in '\n', read until the server closes, close), started again as soon
 * as it ends. One thread, non-blocking sockets, epoll. Destinations are used
 * round robin, one per request.
 *
 *   latency --conns C --duration S [--warmup W] [--req-bytes 64] [--timeout-ms 2000]
 *           [--http AUTHORITY PATH] [--label L] DST...
 *
 * --http: the request is an HTTP/1.1 head instead ("GET PATH HTTP/1.1", Host:
 * AUTHORITY, "Connection: close": the server, or a proxy in between, closes
 * after its response, so EOF still ends a request); a request counts only when
 * the response's status line says 200 (others are "bad_status", not samples).
 *
 * Per-request latency = from socket() to the server's EOF. Requests that start
 * during the warm-up are not recorded; requests that end after the window are
 * not recorded. Prints one JSON object: counts, requests/s, mean and
 * percentiles (exact, from every sample), and a histogram with buckets of
 * ~4.4% width (2^(1/16)) in microseconds.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "netaddr.h"

#define MAX_DST 1024

/* S_CONNECTING: until the whole request is written (connect, then write at EPOLLOUT) */
enum { S_IDLE, S_CONNECTING, S_READING };

struct slot {
	int fd;
	int state;
	uint64_t t0;
	size_t sent; /* request bytes written so far */
	size_t got;
	char status[16]; /* the response's first bytes (--http: "HTTP/1.1 200 ") */
};

static struct sockaddr_storage dst[MAX_DST];
static socklen_t dst_len[MAX_DST];
static int ndst, next_dst;
static char req[4096];
static size_t req_len = 64;
static int http;

static uint64_t *samples;
static size_t nsamples, cap;
static uint64_t errors, timeouts, started, bad_status, write_again;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static void record(uint64_t ns)
{
	if (nsamples == cap) {
		cap = cap ? cap * 2 : 1 << 20;
		samples = realloc(samples, cap * sizeof(*samples));
		if (!samples) {
			perror("realloc");
			exit(3);
		}
	}
	samples[nsamples++] = ns;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double pct(double p)
{
	size_t i;

	if (!nsamples)
		return 0;
	/* nearest rank */
	i = (size_t)ceil(p / 100.0 * nsamples);
	if (i < 1)
		i = 1;
	return samples[i - 1] / 1000.0;
}

static void start(int ep, struct slot *s)
{
	struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = s };
	int d = next_dst++ % ndst;

	s->t0 = now_ns();
	s->sent = 0;
	s->got = 0;
	memset(s->status, 0, sizeof(s->status));
	s->fd = socket(dst[d].ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0) {
		perror("socket");
		exit(3);
	}
	started++;
	if (connect(s->fd, (struct sockaddr *)&dst[d], dst_len[d]) && errno != EINPROGRESS) {
		/* fails on the next event: keep the slot in the loop */
		ev.events = EPOLLOUT | EPOLLERR;
	}
	s->state = S_CONNECTING;
	epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &ev);
}

static void finish(int ep, struct slot *s, int ok, uint64_t t, uint64_t warm_end, uint64_t end)
{
	close(s->fd);
	s->fd = -1;
	s->state = S_IDLE;
	if (!ok)
		errors++;
	else if (http && strncmp(s->status, "HTTP/1.1 200 ", 13) && strncmp(s->status, "HTTP/1.0 200 ", 13))
		bad_status++;
	else if (s->t0 >= warm_end && t <= end)
		record(t - s->t0);
	(void)ep;
}

int main(int argc, char **argv)
{
	int conns = 1, timeout_ms = 2000, ep;
	double duration = 5, warmup = 1;
	const char *label = "", *authority = NULL, *path = NULL;
	struct slot *slots;
	uint64_t t_start, warm_end, end, last_check;
	double mean = 0;

	signal(SIGPIPE, SIG_IGN);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--conns") && i + 1 < argc)
			conns = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--duration") && i + 1 < argc)
			duration = atof(argv[++i]);
		else if (!strcmp(argv[i], "--warmup") && i + 1 < argc)
			warmup = atof(argv[++i]);
		else if (!strcmp(argv[i], "--req-bytes") && i + 1 < argc)
			req_len = strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--timeout-ms") && i + 1 < argc)
			timeout_ms = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--http") && i + 2 < argc) {
			authority = argv[++i];
			path = argv[++i];
			http = 1;
		} else if (!strcmp(argv[i], "--label") && i + 1 < argc)
			label = argv[++i];
		else if (ndst < MAX_DST && !parse_hostport(argv[i], &dst[ndst], &dst_len[ndst]))
			ndst++;
		else {
			fprintf(stderr, "latency: bad argument %s\n", argv[i]);
			return 2;
		}
	}
	if (!ndst || conns < 1 || req_len < 1 || req_len > sizeof(req)) {
		fprintf(stderr, "usage: latency --conns C --duration S [--warmup W] [--req-bytes N] DST...\n");
		return 2;
	}
	if (http) {
		int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path,
				 authority);

		if (n < 0 || (size_t)n >= sizeof(req)) {
			fprintf(stderr, "latency: --http: request head longer than %zu bytes\n", sizeof(req));
			return 2;
		}
		req_len = n;
	} else {
		memset(req, 'q', req_len);
		req[req_len - 1] = '\n';
	}
	ep = epoll_create1(EPOLL_CLOEXEC);
	slots = calloc(conns, sizeof(*slots));
	t_start = now_ns();
	warm_end = t_start + (uint64_t)(warmup * 1e9);
	end = warm_end + (uint64_t)(duration * 1e9);
	last_check = t_start;
	for (int i = 0; i < conns; i++)
		start(ep, &slots[i]);

	for (;;) {
		struct epoll_event evs[256];
		int n = epoll_wait(ep, evs, 256, 100);
		uint64_t t = now_ns();

		if (n < 0 && errno != EINTR) {
			perror("epoll_wait");
			return 3;
		}
		for (int i = 0; i < n; i++) {
			struct slot *s = evs[i].data.ptr;

			if (s->state == S_CONNECTING) {
				int err = 0;
				socklen_t el = sizeof(err);
				struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.ptr = s };

				ssize_t w = 0;

				getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &el);
				while (!err && !(evs[i].events & EPOLLERR) && s->sent < req_len &&
				       (w = write(s->fd, req + s->sent, req_len - s->sent)) > 0)
					s->sent += w;
				if (s->sent < req_len && w < 0 && errno == EAGAIN) {
					/*
					 * Not writable yet although connect() returned: the
					 * defer-connect module answers the first write this way
					 * on a non-blocking socket while it connects to the
					 * endpoint the head chose. Again at the next EPOLLOUT.
					 */
					write_again++;
					continue;
				}
				if (s->sent < req_len) {
					finish(ep, s, 0, t, warm_end, end);
				} else {
					s->state = S_READING;
					epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &ev);
					continue;
				}
			} else if (s->state == S_READING) {
				char buf[65536];
				ssize_t r;

				while ((r = read(s->fd, buf, sizeof(buf))) > 0) {
					if (s->got < sizeof(s->status) - 1) {
						size_t k = sizeof(s->status) - 1 - s->got;

						memcpy(s->status + s->got, buf, (size_t)r < k ? (size_t)r : k);
					}
					s->got += r;
				}
				if (r < 0 && errno == EAGAIN)
					continue;
				finish(ep, s, r == 0 && s->got > 0, now_ns(), warm_end, end);
			}
			if (t < end)
				start(ep, s);
		}
		/* timeouts, checked every 100 ms */
		t = now_ns();
		if (t - last_check > 100000000ull) {
			last_check = t;
			for (int i = 0; i < conns; i++) {
				struct slot *s = &slots[i];

				if (s->state != S_IDLE && t > s->t0 && t - s->t0 > (uint64_t)timeout_ms * 1000000ull) {
					timeouts++;
					finish(ep, s, 0, t, warm_end, end);
					if (t < end)
						start(ep, s);
				}
			}
		}
		if (t >= end) {
			int busy = 0;

			for (int i = 0; i < conns; i++)
				busy |= slots[i].state != S_IDLE;
			if (!busy || t - end > (uint64_t)timeout_ms * 1000000ull)
				break;
		}
	}
	for (size_t i = 0; i < nsamples; i++)
		mean += samples[i] / 1000.0;
	if (nsamples)
		mean /= nsamples;
	qsort(samples, nsamples, sizeof(*samples), cmp_u64);

	printf("{\"label\":\"%s\",\"conns\":%d,\"duration_s\":%.3f,\"warmup_s\":%.3f,\"destinations\":%d,"
	       "\"req_bytes\":%zu,\"requests\":%zu,\"started\":%llu,\"errors\":%llu,\"timeouts\":%llu,"
	       "\"bad_status\":%llu,\"write_again\":%llu,\"http\":%s,"
	       "\"rps\":%.1f,\"mean_us\":%.2f,\"min_us\":%.2f,\"p50_us\":%.2f,\"p90_us\":%.2f,"
	       "\"p99_us\":%.2f,\"p999_us\":%.2f,\"max_us\":%.2f,\"hist_us\":[",
	       label, conns, duration, warmup, ndst, req_len, nsamples, (unsigned long long)started,
	       (unsigned long long)errors, (unsigned long long)timeouts, (unsigned long long)bad_status,
	       (unsigned long long)write_again, http ? "true" : "false", nsamples / duration, mean,
	       nsamples ? samples[0] / 1000.0 : 0, pct(50), pct(90), pct(99), pct(99.9),
	       nsamples ? samples[nsamples - 1] / 1000.0 : 0);
	/* log buckets: upper bound 2^(k/16) us; [upper_us, count] for non-empty buckets */
	{
		size_t i = 0;
		int first = 1;

		for (int k = 0; i < nsamples && k < 16 * 24; k++) {
			double ub = pow(2.0, (k + 1) / 16.0);
			size_t c = 0;

			while (i < nsamples && samples[i] / 1000.0 < ub) {
				c++;
				i++;
			}
			if (c) {
				printf("%s[%.2f,%zu]", first ? "" : ",", ub, c);
				first = 0;
			}
		}
	}
	printf("]}\n");
	return 0;
}
