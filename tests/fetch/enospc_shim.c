/* enospc_shim.c: an LD_PRELOAD library for the fetch tests that makes the disk look full:
 * write() to a file whose name ends in ".part" fails with ENOSPC once MPSL_TEST_ENOSPC_AFTER
 * bytes have been written to such files. Everything else is passed through. */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

ssize_t write(int fd, const void *buf, size_t count);

static long long written_so_far;

static int is_part_file(int fd)
{
    char link[64], target[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n <= 5) {
        return 0;
    }
    target[n] = '\0';
    return strcmp(target + n - 5, ".part") == 0;
}

ssize_t write(int fd, const void *buf, size_t count)
{
    static ssize_t (*real_write)(int, const void *, size_t);
    if (!real_write) {
        *(void **)&real_write = dlsym(RTLD_NEXT, "write");
    }
    const char *limit_text = getenv("MPSL_TEST_ENOSPC_AFTER");
    if (limit_text && is_part_file(fd)) {
        long long limit = atoll(limit_text);
        if (written_so_far >= limit) {
            errno = ENOSPC;
            return -1;
        }
        if (written_so_far + (long long)count > limit) {
            count = (size_t)(limit - written_so_far);
        }
        ssize_t w = real_write(fd, buf, count);
        if (w > 0) {
            written_so_far += w;
        }
        return w;
    }
    return real_write(fd, buf, count);
}
