// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Benchmark backend: one epoll thread serving every listening socket given.
 * Each connection: read the request up to its first '\n', write RESP bytes,
 * close (the server closes first, as an HTTP/1.0 server does, so TIME_WAIT
 * lands here and never exhausts the clients' ephemeral ports).
 *
 *   backend [--resp-bytes 128] [--http] [--ready FILE] IP:PORT...
 *
 * --http: read the request head up to its blank line ("\r\n\r\n": nothing is
 * left unread, so the close sends FIN, not RST, to a proxy in between) and
 * answer "HTTP/1.1 200 OK" with "Connection: close" and a body of RESP bytes.
 *
 * IPv6 as [addr]:port. Binding 0.0.0.0:PORT with a `local` route for a prefix
 * on lo (ip route add local 10.64.0.0/10 dev lo) serves every address of it.
 * Writes "ready <pid>" to FILE once every socket listens. Runs until killed.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "netaddr.h"

#define MAX_LISTEN 64
#define REQ_MAX 4096

struct conn {
	int fd;
	int listener;
	size_t got;
	char tail[3]; /* --http: the last bytes read, for a "\r\n\r\n" split over reads */
};

static char resp[65536];
static size_t resp_len = 128;
static int http;

/* --http: whether the bytes read so far end the request head */
static int head_done(struct conn *c, const char *buf, size_t n)
{
	char joined[REQ_MAX + sizeof(c->tail)];
	size_t k = c->got < sizeof(c->tail) ? c->got : sizeof(c->tail);

	memcpy(joined, c->tail + sizeof(c->tail) - k, k);
	memcpy(joined + k, buf, n);
	if (k + n >= sizeof(c->tail))
		memcpy(c->tail, joined + k + n - sizeof(c->tail), sizeof(c->tail));
	else
		memcpy(c->tail + sizeof(c->tail) - (k + n), joined, k + n);
	return memmem(joined, k + n, "\r\n\r\n", 4) != NULL;
}

static int listen_on(const struct sockaddr_storage *ss, socklen_t len)
{
	int one = 1;
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss->ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)ss, len) || listen(fd, 4096)) {
		close(fd);
		return -1;
	}
	return fd;
}

int main(int argc, char **argv)
{
	const char *ready = NULL;
	int ep, nl = 0;
	struct conn *ls[MAX_LISTEN];

	signal(SIGPIPE, SIG_IGN);
	ep = epoll_create1(EPOLL_CLOEXEC);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--resp-bytes") && i + 1 < argc) {
			resp_len = strtoul(argv[++i], NULL, 10);
			if (resp_len > sizeof(resp))
				resp_len = sizeof(resp);
		} else if (!strcmp(argv[i], "--http")) {
			http = 1;
		} else if (!strcmp(argv[i], "--ready") && i + 1 < argc) {
			ready = argv[++i];
		} else {
			struct sockaddr_storage ss;
			socklen_t len;
			struct epoll_event ev = { .events = EPOLLIN };

			if (nl == MAX_LISTEN || parse_hostport(argv[i], &ss, &len)) {
				fprintf(stderr, "backend: bad address %s\n", argv[i]);
				return 2;
			}
			ls[nl] = calloc(1, sizeof(struct conn));
			ls[nl]->listener = 1;
			ls[nl]->fd = listen_on(&ss, len);
			if (ls[nl]->fd < 0) {
				fprintf(stderr, "backend: cannot listen on %s: %s\n", argv[i], strerror(errno));
				return 1;
			}
			ev.data.ptr = ls[nl];
			epoll_ctl(ep, EPOLL_CTL_ADD, ls[nl]->fd, &ev);
			nl++;
		}
	}
	if (!nl) {
		fprintf(stderr, "usage: backend [--resp-bytes N] [--http] [--ready FILE] IP:PORT...\n");
		return 2;
	}
	if (http) {
		int h;

		if (resp_len > sizeof(resp) - 128) /* room for the head */
			resp_len = sizeof(resp) - 128;
		h = snprintf(resp, sizeof(resp), "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
			     resp_len);
		for (size_t i = 0; i < resp_len; i++)
			resp[h + i] = 'a' + i % 26;
		resp_len += h;
	} else {
		for (size_t i = 0; i < sizeof(resp); i++)
			resp[i] = 'a' + i % 26;
		if (resp_len)
			resp[resp_len - 1] = '\n';
	}
	if (ready) {
		FILE *f = fopen(ready, "w");

		if (!f)
			return 1;
		fprintf(f, "ready %d\n", (int)getpid());
		fclose(f);
	}
	for (;;) {
		struct epoll_event evs[256];
		int n = epoll_wait(ep, evs, 256, -1);

		if (n < 0 && errno == EINTR)
			continue;
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;

			if (c->listener) {
				for (;;) {
					int fd = accept4(c->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
					struct conn *nc;
					struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP };

					if (fd < 0)
						break;
					nc = calloc(1, sizeof(*nc));
					nc->fd = fd;
					ev.data.ptr = nc;
					epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
				}
				continue;
			}
			for (;;) {
				char buf[REQ_MAX];
				ssize_t r = read(c->fd, buf, sizeof(buf));

				if (r > 0) {
					int end = http ? head_done(c, buf, r) : memchr(buf, '\n', r) != NULL;

					c->got += r;
					if (end || c->got >= REQ_MAX) {
						/* small response: one write into an empty socket buffer */
						ssize_t w = write(c->fd, resp, resp_len);
						(void)w;
						goto done;
					}
					continue;
				}
				if (r < 0 && errno == EAGAIN)
					break;
				goto done; /* EOF or error before a full request */
			}
			continue;
done:
			close(c->fd); /* also removes it from the epoll set */
			free(c);
		}
	}
}
