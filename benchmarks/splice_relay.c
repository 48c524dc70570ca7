/* The machine's bound for a relay: per connection, two threads each splice one
 * direction through a pipe, in C (no interpreter, no event loop, no copy into user
 * space). benchmarks/test_bench_proxy.py builds it with `cc` and sets it beside
 * FaultProxy; what it reaches is what a relay on this machine can reach.
 * Usage: splice_relay UPSTREAM_PORT (prints the port it listens on, 127.0.0.1). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

struct conn { int fds[2], live; };  /* live: directions still pumping */
struct flow { struct conn *conn; int src, dst; };

static void *pump(void *arg) {
    struct flow *f = arg;
    int pipefd[2];
    if (pipe(pipefd) == 0) {
        fcntl(pipefd[1], F_SETPIPE_SZ, 1 << 20);
        ssize_t n;
        while ((n = splice(f->src, NULL, pipefd[1], NULL, 1 << 20, SPLICE_F_MOVE)) > 0) {
            while (n > 0) {
                ssize_t m = splice(pipefd[0], NULL, f->dst, NULL, n, SPLICE_F_MOVE);
                if (m <= 0) goto out;
                n -= m;
            }
        }
    out:
        close(pipefd[0]);
        close(pipefd[1]);
    }
    shutdown(f->dst, SHUT_WR);
    if (__atomic_sub_fetch(&f->conn->live, 1, __ATOMIC_ACQ_REL) == 0) {
        close(f->conn->fds[0]);
        close(f->conn->fds[1]);
        free(f->conn);
    }
    free(f);
    return NULL;
}

static void start(struct conn *conn, int src, int dst) {
    struct flow *f = malloc(sizeof *f);
    pthread_t thread;
    f->conn = conn;
    f->src = src;
    f->dst = dst;
    pthread_create(&thread, NULL, pump, f);
    pthread_detach(thread);
}

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    int one = 1, server = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    if (bind(server, (void *)&addr, sizeof addr) || listen(server, 64)) return 1;
    getsockname(server, (void *)&addr, &len);
    printf("%d\n", ntohs(addr.sin_port));
    fflush(stdout);
    struct sockaddr_in up = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[1])),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    for (;;) {
        int client = accept(server, NULL, NULL), upstream = socket(AF_INET, SOCK_STREAM, 0);
        if (client < 0) return 1;
        if (connect(upstream, (void *)&up, sizeof up)) {
            close(client);
            close(upstream);
            continue;
        }
        setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        setsockopt(upstream, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct conn *conn = malloc(sizeof *conn);
        conn->fds[0] = client;
        conn->fds[1] = upstream;
        conn->live = 2;
        start(conn, client, upstream);
        start(conn, upstream, client);
    }
}
