/* Positioned reads from a reader's descriptor, whole or up to the end of the file. */
#include "image/fdread.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

ssize_t ts_fd_read_at(int fd, void *buf, size_t len, uint64_t off)
{
    size_t got = 0;
    /* pread's count and result are signed: one call never asks for more than SSIZE_MAX. */
    if (len > SSIZE_MAX)
        len = SSIZE_MAX;
    while (got < len) {
        if (off + got > (uint64_t)INT64_MAX) {
            errno = EOVERFLOW;
            return -1;
        }
        ssize_t n = pread(fd, (uint8_t *)buf + got, len - got, (off_t)(off + got));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    return (ssize_t)got;
}

int ts_fd_size(int fd, uint64_t *size)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return -1;
    if (st.st_size < 0) {
        errno = EINVAL;
        return -1;
    }
    *size = (uint64_t)st.st_size;
    return 0;
}
