/* Fault injection for the tests (LD_PRELOAD): connect(2) to the TCP port in
 * SEAMLESS_TEST_EBUSY_PORT fails with EBUSY ("device or resource busy") the first
 * SEAMLESS_TEST_EBUSY_TIMES times (default 1); each failure appends a line to the file in
 * SEAMLESS_TEST_EBUSY_LOG. Upstream seamless-remote answers EBUSY with a client restart; a test
 * peer cannot produce that errno, so the test preloads this into the client process. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

static int remaining = -1; /* -1: not read from the environment yet */

static int port_of(const struct sockaddr *addr) {
    if (addr == NULL) return -1;
    if (addr->sa_family == AF_INET) return ntohs(((const struct sockaddr_in *)addr)->sin_port);
    if (addr->sa_family == AF_INET6) return ntohs(((const struct sockaddr_in6 *)addr)->sin6_port);
    return -1;
}

int connect(int fd, const struct sockaddr *addr, socklen_t len) {
    static int (*real)(int, const struct sockaddr *, socklen_t) = NULL;
    if (real == NULL) real = (int (*)(int, const struct sockaddr *, socklen_t))dlsym(RTLD_NEXT, "connect");
    const char *port = getenv("SEAMLESS_TEST_EBUSY_PORT");
    if (port != NULL && port_of(addr) == atoi(port)) {
        int unset = -1;
        const char *times = getenv("SEAMLESS_TEST_EBUSY_TIMES");
        __atomic_compare_exchange_n(&remaining, &unset, times ? atoi(times) : 1, 0,
                                    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
        int left = __atomic_load_n(&remaining, __ATOMIC_SEQ_CST);
        int take = 0;
        while (left > 0 && !take) {
            take = __atomic_compare_exchange_n(&remaining, &left, left - 1, 0, __ATOMIC_SEQ_CST,
                                               __ATOMIC_SEQ_CST);
        }
        if (take) {
            const char *log = getenv("SEAMLESS_TEST_EBUSY_LOG");
            if (log != NULL) {
                int lf = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
                if (lf >= 0) {
                    ssize_t ignored = write(lf, "EBUSY\n", 6);
                    (void)ignored;
                    close(lf);
                }
            }
            errno = EBUSY;
            return -1;
        }
    }
    return real(fd, addr, len);
}
