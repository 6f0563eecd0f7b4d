/* A throwaway memcached for the tests (see memcached.h). */
#include "memcached.h"
#include "harness.h"
#include "testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

const char *tu_memcached_binary(void)
{
    static const char *const paths[] = {"/usr/bin/memcached", "/usr/local/bin/memcached",
                                        "/usr/sbin/memcached"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
        if (access(paths[i], X_OK) == 0)
            return paths[i];
    return NULL;
}

/* A connected socket to the memcached (timeouts of 2 s each way), or -1. */
static int dial(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int tu_memcached_start(struct tu_memcached *m)
{
    memset(m, 0, sizeof *m);
    const char *bin = tu_memcached_binary();
    m->port = tu_free_port();
    if (!bin || m->port <= 0)
        return -1;
    snprintf(m->servers, sizeof m->servers, "127.0.0.1:%d", m->port);
    char port[16];
    snprintf(port, sizeof port, "%d", m->port);
    m->pid = fork();
    if (m->pid < 0)
        return -1;
    if (m->pid == 0) {
        /* memcached refuses to run as root unless told whom to become. */
        if (geteuid() == 0)
            execl(bin, bin, "-l", "127.0.0.1", "-p", port, "-U", "0", "-u", "nobody", (char *)NULL);
        else
            execl(bin, bin, "-l", "127.0.0.1", "-p", port, "-U", "0", (char *)NULL);
        _exit(127);
    }
    double deadline = tu_now_ms() + 5000;
    while (tu_now_ms() < deadline) {
        int fd = dial(m->port);
        if (fd >= 0) {
            close(fd);
            return 0;
        }
        if (waitpid(m->pid, NULL, WNOHANG) == m->pid) {
            m->pid = 0;
            fprintf(stderr, "memcached: %s exited at start\n", bin);
            return -1;
        }
        usleep(20000);
    }
    fprintf(stderr, "memcached: not accepting connections on port %d within 5 s\n", m->port);
    tu_memcached_stop(m);
    return -1;
}

void tu_memcached_stop(struct tu_memcached *m)
{
    if (m->pid <= 0)
        return;
    kill(m->pid, SIGKILL);
    waitpid(m->pid, NULL, 0);
    m->pid = 0;
}

long long tu_memcached_stat(const struct tu_memcached *m, const char *name)
{
    int fd = dial(m->port);
    if (fd < 0)
        return -1;
    const char cmd[] = "stats\r\n";
    char reply[16384];
    size_t got = 0;
    if (write(fd, cmd, sizeof cmd - 1) != (ssize_t)(sizeof cmd - 1)) {
        close(fd);
        return -1;
    }
    while (got < sizeof reply - 1) {
        ssize_t n = read(fd, reply + got, sizeof reply - 1 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
        reply[got] = '\0';
        if (strstr(reply, "END\r\n"))
            break;
    }
    close(fd);
    reply[got] = '\0';
    char needle[128];
    snprintf(needle, sizeof needle, "STAT %s ", name);
    const char *at = strstr(reply, needle);
    return at ? strtoll(at + strlen(needle), NULL, 10) : -1;
}
