/* Positioned reads from a reader's descriptor: no shared file offset, no mmap, no path. */
#ifndef TESSERA_FDREAD_H
#define TESSERA_FDREAD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Reads up to len bytes at offset off with pread, retrying short reads and EINTR. Returns the
 * bytes read (fewer than len only at the end of the file), or -1 with errno set. Never moves
 * fd's file offset, so readers on dup'd descriptors do not disturb one another. */
ssize_t ts_fd_read_at(int fd, void *buf, size_t len, uint64_t off);

/* The file's current size; -1 with errno set on failure. */
int ts_fd_size(int fd, uint64_t *size);

#endif
