/*
 * Stockade's compatibility library for the runsc tier (policy/runsc.json lists each function with
 * its reason). Debian 12's gVisor (0.0~20221219) answers statx and fstatat with EINVAL when the
 * flags hold AT_NO_AUTOMOUNT, which coreutils 9.1 passes on every stat: `ls -la`, `stat`, `cp -a`
 * failed on every path. gVisor has no automount points, so the flag means nothing there: these
 * wrappers clear it and call glibc's own function. Loaded into every dynamically linked process of
 * the sandbox through the template's /etc/ld.so.preload; compiled on the host by RunscRuntime.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

typedef int (*statx_fn)(int, const char *, int, unsigned int, struct statx *);
typedef int (*fstatat_fn)(int, const char *, struct stat *, int);
typedef int (*fstatat64_fn)(int, const char *, struct stat64 *, int);

/* The next definition of NAME (glibc's), looked up once; racing threads store the same pointer.
   A libc without it (older than 2.33 for fstatat) makes the call fail with ENOSYS. */
#define REAL(type, name) ({ \
    static type real_; \
    type f_ = __atomic_load_n(&real_, __ATOMIC_ACQUIRE); \
    if (!f_) { f_ = (type) dlsym(RTLD_NEXT, name); __atomic_store_n(&real_, f_, __ATOMIC_RELEASE); } \
    f_; })

int statx(int dirfd, const char *path, int flags, unsigned int mask, struct statx *buf) {
    statx_fn f = REAL(statx_fn, "statx");
    if (!f) {
        errno = ENOSYS;
        return -1;
    }
    return f(dirfd, path, flags & ~AT_NO_AUTOMOUNT, mask, buf);
}

int fstatat(int dirfd, const char *path, struct stat *buf, int flags) {
    fstatat_fn f = REAL(fstatat_fn, "fstatat");
    if (!f) {
        errno = ENOSYS;
        return -1;
    }
    return f(dirfd, path, buf, flags & ~AT_NO_AUTOMOUNT);
}

int fstatat64(int dirfd, const char *path, struct stat64 *buf, int flags) {
    fstatat64_fn f = REAL(fstatat64_fn, "fstatat64");
    if (!f) {
        errno = ENOSYS;
        return -1;
    }
    return f(dirfd, path, buf, flags & ~AT_NO_AUTOMOUNT);
}
